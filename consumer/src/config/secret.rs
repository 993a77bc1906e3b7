//! Secrets (connection strings, keys): given inline, by environment variable or by file, and
//! never printed (`Debug`/`Display` show `<redacted>`).
use std::path::{Path, PathBuf};

/// A secret value. Its `Debug` and `Display` never show it; use [`Secret::expose`] at the one
/// place that needs the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from: `<key> = "..."`, `<key>_env = "VAR"` or `<key>_file = "path"`.
#[derive(Debug, Clone, Default)]
pub struct SecretSpec {
    /// The inline value (`<key>`).
    pub inline: Option<Secret>,
    /// Environment variable name (`<key>_env`).
    pub env: Option<String>,
    /// File holding the value (`<key>_file`); trailing whitespace is trimmed.
    pub file: Option<PathBuf>,
}

impl SecretSpec {
    /// True when no form is given.
    pub fn is_empty(&self) -> bool {
        self.inline.is_none() && self.env.is_none() && self.file.is_none()
    }

    /// Resolves the secret. `key` names the setting in messages (e.g.
    /// `[source.eventhubs] connection_string`), `base` resolves a relative file path, `env`
    /// looks variables up. `Ok(None)` when no form is given.
    pub fn resolve(
        &self,
        key: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, String> {
        let forms = [
            self.inline.is_some(),
            self.env.is_some(),
            self.file.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if forms > 1 {
            return Err(format!(
                "{key}: give only one of `{k}`, `{k}_env` and `{k}_file`",
                k = key.rsplit(' ').next().unwrap_or(key)
            ));
        }
        if let Some(v) = &self.inline {
            if v.expose().trim().is_empty() {
                return Err(format!("{key}: the value is empty"));
            }
            return Ok(Some(v.clone()));
        }
        if let Some(var) = &self.env {
            return match env(var) {
                Some(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
                Some(_) => Err(format!(
                    "{key}: environment variable {var} is empty; export it with the secret"
                )),
                None => Err(format!(
                    "{key}: environment variable {var} is not set; export it with the secret (or change `_env`)"
                )),
            };
        }
        if let Some(file) = &self.file {
            let path = if file.is_absolute() {
                file.clone()
            } else {
                base.join(file)
            };
            return match std::fs::read_to_string(&path) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
                Ok(_) => Err(format!("{key}: secret file {} is empty", path.display())),
                Err(e) => Err(format!(
                    "{key}: cannot read secret file {}: {e}",
                    path.display()
                )),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("SharedAccessKey=abc");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "SharedAccessKey=abc");
    }

    #[test]
    fn resolves_each_form_and_explains_failures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cs.txt"), "from-file\n").unwrap();
        let env = |k: &str| (k == "SET").then(|| "from-env".to_owned());
        let key = "[x] connection_string";
        let inline = SecretSpec {
            inline: Some(Secret::new("inline")),
            ..Default::default()
        };
        assert_eq!(
            inline.resolve(key, dir.path(), &env).unwrap().unwrap(),
            Secret::new("inline")
        );
        let by_env = SecretSpec {
            env: Some("SET".into()),
            ..Default::default()
        };
        assert_eq!(
            by_env
                .resolve(key, dir.path(), &env)
                .unwrap()
                .unwrap()
                .expose(),
            "from-env"
        );
        let by_file = SecretSpec {
            file: Some("cs.txt".into()),
            ..Default::default()
        };
        assert_eq!(
            by_file
                .resolve(key, dir.path(), &env)
                .unwrap()
                .unwrap()
                .expose(),
            "from-file"
        );
        let unset = SecretSpec {
            env: Some("UNSET".into()),
            ..Default::default()
        };
        let e = unset.resolve(key, dir.path(), &env).unwrap_err();
        assert!(e.contains("UNSET is not set"), "{e}");
        let both = SecretSpec {
            inline: Some(Secret::new("a")),
            env: Some("SET".into()),
            file: None,
        };
        let e = both.resolve(key, dir.path(), &env).unwrap_err();
        assert!(e.contains("only one of `connection_string`"), "{e}");
        assert!(SecretSpec::default()
            .resolve(key, dir.path(), &env)
            .unwrap()
            .is_none());
    }
}
