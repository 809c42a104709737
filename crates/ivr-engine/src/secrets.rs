//! Secrets out of the configuration file: any of the keys in
//! [`SECRET_KEYS`] may instead be given as `<key>_env = "VARIABLE"` (the
//! value of an environment variable) or `<key>_file = "/run/secrets/x"` (the
//! contents of a file, one trailing line break removed), in any table or
//! inline table: `password_file = "/etc/ivr/trunk.pw"` in a `[[trunk]]`,
//! `database_url_env = "IVR_DATABASE_URL"` in `[integrations]`,
//! `auth = { kind = "bearer", token_env = "PUZZEL_TOKEN" }`.
//!
//! The text is rewritten before TOML parsing, line by line, so a later
//! error still names the right line. An error here names the key and the
//! variable or file, never a value.

use std::path::PathBuf;

/// The keys that may come from the environment or a file.
pub const SECRET_KEYS: [&str; 4] = ["password", "token", "api_key", "database_url"];

/// Why a secret could not be had.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `<key>_env` names a variable that is not set (or not UTF-8).
    #[error("line {line}: `{key}_env` names the environment variable {var}, which is not set")]
    Unset {
        /// Line in the file (1-based).
        line: usize,
        /// The key.
        key: String,
        /// The variable.
        var: String,
    },
    /// `<key>_file` names a file that cannot be read.
    #[error("line {line}: `{key}_file`: cannot read {}: {kind}", path.display())]
    File {
        /// Line in the file (1-based).
        line: usize,
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What the OS said (kind only).
        kind: std::io::ErrorKind,
    },
}

/// Replaces every `<secret>_env = "X"` / `<secret>_file = "X"` in `text`
/// with `<secret> = "<value>"`, the value as a TOML basic string.
///
/// # Errors
/// [`SecretError`] for an unset variable or an unreadable file.
pub fn resolve(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, SecretError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains("_env") && !line.contains("_file") {
            out.push_str(line);
            continue;
        }
        out.push_str(&resolve_line(line, i + 1, env)?);
    }
    Ok(out)
}

fn resolve_line(
    line: &str,
    n: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SecretError> {
    let mut out = String::new();
    let mut rest = line;
    'scan: while !rest.is_empty() {
        for key in SECRET_KEYS {
            for (suffix, from_env) in [("_env", true), ("_file", false)] {
                let Some((before, value, after)) = find_assignment(rest, key, suffix) else {
                    continue;
                };
                let secret = if from_env {
                    env(value).ok_or_else(|| SecretError::Unset {
                        line: n,
                        key: key.into(),
                        var: value.into(),
                    })?
                } else {
                    let path = PathBuf::from(value);
                    let mut s = std::fs::read_to_string(&path).map_err(|e| SecretError::File {
                        line: n,
                        key: key.into(),
                        path: path.clone(),
                        kind: e.kind(),
                    })?;
                    if s.ends_with('\n') {
                        s.pop();
                        if s.ends_with('\r') {
                            s.pop();
                        }
                    }
                    s
                };
                out.push_str(before);
                out.push_str(key);
                out.push_str(" = ");
                out.push_str(&toml_string(&secret));
                rest = after;
                continue 'scan;
            }
        }
        out.push_str(rest);
        break;
    }
    Ok(out)
}

/// The first `key<suffix> = "value"` in `s` at a key boundary: the text
/// before the key, the value, and the text after the closing quote.
fn find_assignment<'a>(s: &'a str, key: &str, suffix: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let name = format!("{key}{suffix}");
    let mut from = 0;
    while let Some(pos) = s.get(from..)?.find(&name) {
        let start = from + pos;
        from = start + name.len();
        let boundary = s[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == '{' || c == ',');
        if !boundary {
            continue;
        }
        let tail = s[start + name.len()..].trim_start();
        let Some(tail) = tail.strip_prefix('=') else {
            continue;
        };
        let tail = tail.trim_start();
        let Some(tail) = tail.strip_prefix('"') else {
            continue;
        };
        let end = tail.find('"')?;
        let value = &tail[..end];
        let after = &tail[end + 1..];
        return Some((&s[..start], value, after));
    }
    None
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_from_the_environment_replaces_its_key_on_the_same_line() {
        let env = |k: &str| (k == "PW").then(|| "p\"w\\1".to_string());
        let text = "# password_env = \"NOPE\"\n[x]\npassword_env = \"PW\"\nauth = { kind = \"basic\", username = \"u\", password_env = \"PW\" }\n";
        let out = resolve(text, &env).unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["x"]["password"].as_str(), Some("p\"w\\1"));
        assert_eq!(v["x"]["auth"]["password"].as_str(), Some("p\"w\\1"));
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn an_unset_variable_is_named_and_an_unrelated_key_is_left_alone() {
        let e = resolve("token_env = \"MISSING\"\n", &|_| None).unwrap_err();
        assert!(e.to_string().contains("MISSING"), "{e}");
        let kept = "key_file = \"/etc/ivr/tls.key\"\n";
        assert_eq!(resolve(kept, &|_| None).unwrap(), kept);
    }
}
