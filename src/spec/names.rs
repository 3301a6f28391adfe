//! Naming rules the services enforce, as pure functions: each says what is wrong with a name,
//! in words the user can act on, or `None`.

/// What is wrong with a DNS name a viewer uses (a distribution's domain or alias), if anything.
///
/// The rules are CloudFront's for alternate domain names and Route 53's for record names:
/// labels of 1-63 letters, digits and hyphens, not starting or ending with a hyphen, 253
/// characters in all, and a `*` only as the whole first label ("Requirements for using
/// alternate domain names", CloudFront Developer Guide; "DNS domain name format", Route 53
/// Developer Guide). poactl asks for lowercase, the form Route 53 and ACM answer with, so
/// that what it reads back compares equal to the spec.
pub fn dns_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".to_string());
    }
    if name.ends_with('.') {
        return Some("write the name without the trailing dot".to_string());
    }
    if name.len() > 253 {
        return Some(format!("the name is {} characters long; DNS allows 253", name.len()));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("write the name in lowercase".to_string());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" && i == 0 {
            continue;
        }
        if label.is_empty() {
            return Some("the name has an empty label (`..`)".to_string());
        }
        if label.contains('*') {
            return Some("a `*` may only be the whole first label (`*.example.com`)".to_string());
        }
        if label.len() > 63 {
            return Some(format!("the label `{label}` is {} characters long; DNS allows 63", label.len()));
        }
        if !label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Some(format!(
                "the label `{label}` has characters DNS names cannot hold; use letters, digits and `-` (punycode `xn--` for other scripts)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    if labels.len() < 2 {
        return Some("a domain has at least two labels (`cdn.example.com`)".to_string());
    }
    None
}

/// Whether `name` is the zone's apex or a name under it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// A Route 53 hosted zone id (`Z0123456789ABCDEFGHIJ`), as opposed to a zone name.
pub fn is_zone_id(s: &str) -> bool {
    let id = s.strip_prefix("/hostedzone/").unwrap_or(s);
    id.len() > 1 && id.len() <= 32 && id.starts_with('Z') && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether a certificate name (`*.example.com` or `cdn.example.com`) covers a host name: a
/// wildcard covers exactly one label ("a wildcard name ... protects only one subdomain
/// level", ACM User Guide, "Wildcard names").
pub fn certificate_covers(certificate_name: &str, host: &str) -> bool {
    let (c, h) = (certificate_name.to_ascii_lowercase(), host.to_ascii_lowercase());
    match c.strip_prefix("*.") {
        Some(parent) => h.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && first != "*" && rest == parent) || h == c,
        None => c == h,
    }
}

/// Why a tag key or value would be refused by Atlas, if it would.
///
/// Atlas' Resource Tags page: keys and values of 1-255 characters, only letters, digits, spaces
/// and `; @ _ - . +` (the Atlas Kubernetes operator validates `^[a-zA-Z0-9][a-zA-Z0-9 @_.+;-]*$`;
/// terraform-provider-mongodbatlas#1668 and #4124 show `:` and `/` refused with 400 at apply).
pub fn atlas_tag_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.chars().count() > 255 {
        return Some("Atlas tags need 1-255 characters".to_string());
    }
    if !s.starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
        return Some("Atlas tags start with a letter or a digit".to_string());
    }
    let bad: String = s.chars().filter(|ch| !(ch.is_ascii_alphanumeric() || " ;@_-.+".contains(*ch))).take(5).collect();
    (!bad.is_empty()).then(|| format!("Atlas allows only letters, digits, spaces and ; @ _ - . + in tags (not `{bad}`)"))
}

/// Why a tag key (or value, with `is_key` false) would be refused by AWS, if it would: keys of
/// 1-128 and values of 0-256 characters, letters, digits, spaces and `_ . : / = + - @` (S3,
/// CloudFront and CloudWatch tagging references).
pub fn aws_tag_problem(s: &str, is_key: bool) -> Option<String> {
    let n = s.chars().count();
    if is_key && (n == 0 || n > 128) {
        return Some("AWS tag keys need 1-128 characters".to_string());
    }
    if n > 256 {
        return Some("AWS tag values have at most 256 characters".to_string());
    }
    let bad: String = s.chars().filter(|ch| !(ch.is_alphanumeric() || ch.is_whitespace() || "_.:/=+-@".contains(*ch))).take(5).collect();
    (!bad.is_empty()).then(|| format!("AWS allows only letters, digits, spaces and _ . : / = + - @ in tags (not `{bad}`)"))
}

/// S3's bucket naming rules (general purpose buckets).
pub fn bucket_name_problem(name: &str) -> Option<String> {
    let len = name.len();
    if !(3..=63).contains(&len) {
        return Some(format!("bucket names are 3 to 63 characters long (this one has {len})"));
    }
    if let Some(bad) = name.chars().find(|ch| !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || *ch == '-' || *ch == '.')) {
        return Some(if bad.is_ascii_uppercase() {
            "bucket names cannot contain uppercase letters".to_string()
        } else {
            format!("bucket names cannot contain `{bad}` (only lowercase letters, digits, `-` and `.`)")
        });
    }
    let first = name.chars().next().unwrap_or('-');
    let last = name.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Some("bucket names must begin and end with a letter or a digit".to_string());
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Some("bucket names cannot contain `..`, `.-` or `-.`".to_string());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("bucket names cannot look like an IP address".to_string());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Some(format!("bucket names cannot start with `{prefix}`"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Some(format!("bucket names cannot end with `{suffix}`"));
        }
    }
    None
}

/// CloudFront's viewer security policies, weakest first (CloudFront Developer Guide,
/// "Supported protocols and ciphers between viewers and CloudFront"; API reference,
/// ViewerCertificate MinimumProtocolVersion). A policy's place here is its strictness.
pub const CLOUDFRONT_TLS_POLICIES: &[&str] =
    &["SSLv3", "TLSv1", "TLSv1_2016", "TLSv1.1_2016", "TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        let table: &[(&str, bool)] = &[
            ("cdn.poafix.example", true),
            ("*.poafix.example", true),
            ("poafix.example", true),
            ("xn--bcher-kva.example", true),
            ("a-b.c1.example", true),
            ("", false),
            ("cdn.poafix.example.", false),
            ("CDN.poafix.example", false),
            ("localhost", false),
            ("cdn..example", false),
            ("cdn.*.example", false),
            ("c*n.example", false),
            ("-cdn.example", false),
            ("cdn-.example", false),
            ("cdn_1.example", false),
            ("caf\u{e9}.example", false),
        ];
        for (name, ok) in table {
            assert_eq!(dns_name_problem(name).is_none(), *ok, "{name}: {:?}", dns_name_problem(name));
        }
        assert!(dns_name_problem(&format!("{}.example", "a".repeat(64))).is_some());
        assert!(dns_name_problem(&format!("{}example", "abcdefghi.".repeat(25))).is_some());
    }

    #[test]
    fn zones_and_ids() {
        assert!(in_zone("cdn.poafix.example", "poafix.example"));
        assert!(in_zone("poafix.example", "poafix.example."));
        assert!(!in_zone("cdn.notpoafix.example", "poafix.example"));
        assert!(is_zone_id("Z0123456789ABCDEFGHIJ"));
        assert!(is_zone_id("/hostedzone/Z2FDTNDATAQYW2"));
        assert!(!is_zone_id("poafix.example"));
        assert!(!is_zone_id("Zone.example"));
    }

    #[test]
    fn wildcards_cover_one_label() {
        let table = [
            ("*.poafix.example", "cdn.poafix.example", true),
            ("*.poafix.example", "poafix.example", false),
            ("*.poafix.example", "a.b.poafix.example", false),
            ("*.poafix.example", "*.poafix.example", true),
            ("cdn.poafix.example", "CDN.poafix.example", true),
            ("cdn.poafix.example", "img.poafix.example", false),
        ];
        for (cert, host, want) in table {
            assert_eq!(certificate_covers(cert, host), want, "{cert} covers {host}");
        }
    }
}
