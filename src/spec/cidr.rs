//! CIDR blocks: parsing (for validate's messages) and containment (for audit's "wider than
//! the VPC" rule). IPv4 and IPv6 alike; a block's host bits need not be zero (AWS and Atlas
//! both accept `10.0.0.1/16` and mean `10.0.0.0/16`).

use std::net::IpAddr;

/// A parsed block: its address as 128 bits (IPv4 in the low 32) and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    bits: u128,
    pub prefix: u8,
    pub v6: bool,
}

impl Cidr {
    /// Parses `ADDR/LEN`, saying what is wrong when it is not one.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let Some((addr, len)) = s.split_once('/') else {
            return Err("the `/prefix` part is missing".into());
        };
        let ip: IpAddr = addr.parse().map_err(|_| format!("`{addr}` is not an IP address"))?;
        let prefix: u8 = len.parse().map_err(|_| format!("`{len}` is not a prefix length"))?;
        let (bits, v6) = match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), false),
            IpAddr::V6(a) => (u128::from(a), true),
        };
        let max = if v6 { 128 } else { 32 };
        if prefix > max {
            return Err(format!("the prefix length must be at most {max}"));
        }
        Ok(Cidr { bits, prefix, v6 })
    }

    fn width(self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }

    /// The network bits, host bits cleared.
    fn network(self, prefix: u8) -> u128 {
        let host = self.width() - u32::from(prefix);
        if host >= 128 { 0 } else { self.bits >> host << host }
    }

    /// Whether every address of `self` is inside `outer`.
    pub fn within(self, outer: Cidr) -> bool {
        self.v6 == outer.v6 && self.prefix >= outer.prefix && self.network(outer.prefix) == outer.network(outer.prefix)
    }

    /// Every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(self) -> bool {
        self.prefix == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Cidr;

    #[test]
    fn containment_by_table() {
        // (inner, outer, within)
        let cases = [
            ("10.0.1.0/24", "10.0.0.0/16", true),
            ("10.0.0.0/16", "10.0.0.0/16", true),
            ("10.0.0.0/8", "10.0.0.0/16", false),
            ("10.1.0.0/24", "10.0.0.0/16", false),
            ("10.0.0.7/16", "10.0.0.0/16", true),
            ("0.0.0.0/0", "10.0.0.0/16", false),
            ("10.0.0.5/32", "0.0.0.0/0", true),
            ("2600:1f18::/56", "2600:1f18::/48", true),
            ("2600:1f18::/40", "2600:1f18::/48", false),
            ("10.0.0.0/24", "::/0", false),
        ];
        for (inner, outer, want) in cases {
            let (i, o) = (Cidr::parse(inner).unwrap(), Cidr::parse(outer).unwrap());
            assert_eq!(i.within(o), want, "{inner} within {outer}");
        }
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
