//! YAML text helpers: `${env:VAR}` interpolation, error locations, and finding
//! the line of a key so that semantic errors can point into the file.

use std::path::Path;

use crate::error::{Error, Location};

/// Replaces `${env:VAR}` and `${env:VAR,default}` in the raw text.
///
/// Working on the text (not on parsed values) keeps every line where it was,
/// so later YAML errors still point at the right line.
pub fn interpolate_env(text: &str, file: &Path) -> Result<String, Error> {
    interpolate_with(text, file, |name| std::env::var(name).ok())
}

pub(crate) fn interpolate_with(
    text: &str,
    file: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    const OPEN: &str = "${env:";
    if !text.contains(OPEN) {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let location = || Location::new(file, Some(index + 1));
        let mut rest = line;
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len()..];
            let end = after.find('}').ok_or_else(|| {
                Error::config(location(), "unclosed `${env:` interpolation (missing `}`)")
            })?;
            let body = &after[..end];
            let (name, default) = match body.split_once(',') {
                Some((name, default)) => (name.trim(), Some(default)),
                None => (body.trim(), None),
            };
            if name.is_empty() {
                return Err(Error::config(
                    location(),
                    "empty variable name in `${env:}`",
                ));
            }
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(Error::config(
                        location(),
                        format!(
                            "environment variable {name} is not set (give a default with `${{env:{name},default}}`)"
                        ),
                    ))
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// Turns a serde_yaml error into a configuration error that names the file and line.
pub fn yaml_error(file: &Path, err: &serde_yaml::Error) -> Error {
    let line = err.location().map(|l| l.line());
    let mut message = err.to_string();
    // serde_yaml appends " at line L column C"; the location already says where.
    if let Some(pos) = message.rfind(" at line ") {
        message.truncate(pos);
    }
    Error::config(Location::new(file, line), message)
}

/// A `pipelines.yml` error (read with serde-saphyr), with the file and line.
pub fn saphyr_error(file: &Path, err: &serde_saphyr::Error) -> Error {
    let line = err.location().map(|l| l.line() as usize);
    let text = err.to_string();
    // "error: line L column C: what": the location already says where.
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let what = match text.strip_prefix("line ").and_then(|t| t.split_once(": ")) {
        Some((_, what)) => what,
        None => text,
    };
    // A hint meant for programs using the library, not for this file's author.
    let what = what.split(" at line ").next().unwrap_or(what);
    let what = what.trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable");
    Error::config(Location::new(file, line), what.trim().to_string())
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn starts_with_key(content: &str, key: &str) -> bool {
    [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ]
    .iter()
    .any(|k| content.starts_with(k.as_str()))
}

/// The 1-based line of a nested mapping key, e.g. `["pipelines", "detection"]`.
///
/// A best-effort, indentation-based search for block-style YAML: good enough
/// to point a user at the entry an error is about.
pub fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for key in path {
        found = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            if is_blank_or_comment(line) {
                continue;
            }
            let indent = indent_of(line);
            if let Some(p) = parent_indent {
                if indent <= p && i > from {
                    break;
                }
            }
            let content = line.trim_start().trim_start_matches("- ");
            if starts_with_key(content, key) && parent_indent.is_none_or(|p| indent > p) {
                found = Some(i);
                break;
            }
        }
        let i = found?;
        parent_indent = Some(indent_of(lines[i]));
        from = i + 1;
    }
    found.map(|i| i + 1)
}

/// The lines of the items of the block list under `path`, in order (one
/// scan, so that locating every node of a large pipeline stays linear).
pub fn list_item_lines(text: &str, path: &[&str]) -> Vec<usize> {
    let Some(key) = key_line(text, path) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let key_indent = indent_of(lines[key - 1]);
    let mut item_indent = None;
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(key) {
        if is_blank_or_comment(line) {
            continue;
        }
        let indent = indent_of(line);
        let is_item = line.trim_start().starts_with('-');
        if indent < key_indent || (indent == key_indent && !is_item) {
            break;
        }
        if is_item && item_indent.is_none() {
            item_indent = Some(indent);
        }
        if is_item && Some(indent) == item_indent {
            found.push(i + 1);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_variables_and_defaults() {
        let lookup = |n: &str| (n == "HOME_DIR").then(|| "/home/x".to_string());
        let out = interpolate_with(
            "a: ${env:HOME_DIR}/data\nb: ${env:MISSING,fallback}\n",
            Path::new("c.yml"),
            lookup,
        )
        .unwrap();
        assert_eq!(out, "a: /home/x/data\nb: fallback\n");
        assert_eq!(
            interpolate_with("plain: 1\n", Path::new("c.yml"), lookup).unwrap(),
            "plain: 1\n"
        );
    }

    #[test]
    fn missing_variable_names_file_and_line() {
        let err =
            interpolate_with("a: 1\nb: ${env:NOPE}\n", Path::new("c.yml"), |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yml:2: environment variable NOPE is not set (give a default with `${env:NOPE,default}`)"
        );
        let err = interpolate_with("b: ${env:X\n", Path::new("c.yml"), |_| None).unwrap_err();
        assert!(err.to_string().contains("unclosed"));
        let err = interpolate_with("b: ${env:}\n", Path::new("c.yml"), |_| None).unwrap_err();
        assert!(err.to_string().contains("empty variable"));
    }

    const TEXT: &str = "\
# comment
pipelines:
  a:
    nodes:
      - func: f
        name: one
      - func: g

  b:
    pipelines: [a]
    nodes:
    - func: h
other: 1
";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(key_line(TEXT, &["pipelines"]), Some(2));
        assert_eq!(key_line(TEXT, &["pipelines", "a"]), Some(3));
        assert_eq!(key_line(TEXT, &["pipelines", "b"]), Some(9));
        assert_eq!(key_line(TEXT, &["pipelines", "b", "nodes"]), Some(11));
        assert_eq!(key_line(TEXT, &["other"]), Some(13));
        assert_eq!(key_line(TEXT, &["pipelines", "zzz"]), None);
    }

    #[test]
    fn finds_list_items() {
        assert_eq!(
            list_item_lines(TEXT, &["pipelines", "a", "nodes"]),
            vec![5, 7]
        );
        assert_eq!(
            list_item_lines(TEXT, &["pipelines", "b", "nodes"]),
            vec![12]
        );
        assert!(list_item_lines(TEXT, &["pipelines", "c", "nodes"]).is_empty());
    }

    #[test]
    fn pipeline_file_errors_say_what_and_where_once() {
        let err = |text: &str| {
            let options = serde_saphyr::options! { budget: None, with_snippet: false };
            let e = serde_saphyr::from_str_with_options::<
                std::collections::BTreeMap<String, Vec<u32>>,
            >(text, options)
            .unwrap_err();
            saphyr_error(Path::new("pipelines.yml"), &e).to_string()
        };
        assert_eq!(err("a: [1]\nb: [x]\n"), "pipelines.yml:2: invalid u32");
        assert_eq!(
            err("a: [1]\na: [2]\n"),
            "pipelines.yml:2: duplicate mapping key: a"
        );
    }

    #[test]
    fn yaml_errors_carry_the_line() {
        let err = serde_yaml::from_str::<serde_yaml::Value>("a: 1\nb: [\n").unwrap_err();
        let err = yaml_error(Path::new("p.yml"), &err);
        assert!(err.to_string().starts_with("p.yml:"), "{err}");
        assert!(!err.to_string().contains(" at line "), "{err}");
    }
}
