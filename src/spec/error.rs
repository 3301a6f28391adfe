use std::fmt;

use super::yaml::Loc;

/// One problem in a spec, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub loc: Option<Loc>,
    /// Dotted path of the offending field (`atlas.clusters[0].tier`), empty for file-level errors.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    /// The source line the location points into, for the caret display.
    pub snippet: Option<String>,
}

impl SpecError {
    pub fn new(message: impl Into<String>) -> Self {
        SpecError { loc: None, path: String::new(), message: message.into(), hint: None, snippet: None }
    }

    pub fn at(mut self, loc: &Loc) -> Self {
        self.loc = Some(loc.clone());
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.loc {
            write!(f, "{loc}: ")?
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let (Some(loc), Some(line)) = (&self.loc, &self.snippet) {
            let num = loc.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_pad: String = line.chars().take(loc.col.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            write!(f, "\n{pad} |\n{num} | {line}\n{pad} | {caret_pad}^")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  help: {hint}")?;
        }
        Ok(())
    }
}

/// All the problems found in a spec (deserialization stops at the first; checks report all).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} problems in the spec", self.0.len())?;
        }
        Ok(())
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}
