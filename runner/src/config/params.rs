//! The parameter tree: lookup of `params:a.b`, `--params` overrides, env merges.

use serde_json::{Map, Value};

use crate::error::Error;

/// The subtree at a dotted path (`a.b`), if every segment exists.
pub fn lookup<'a>(tree: &'a Value, dotted: &str) -> Option<&'a Value> {
    if let Some(v) = tree.as_object().and_then(|m| m.get(dotted)) {
        // A flat key containing dots wins, as in Kedro's flattened view.
        return Some(v);
    }
    dotted
        .split('.')
        .try_fold(tree, |node, key| node.as_object()?.get(key))
}

/// Sets the leaf at a dotted path, creating intermediate mappings; a
/// numeric segment indexes into an existing list (`classes.0.name`).
pub fn set(tree: &mut Value, dotted: &str, value: Value) {
    let keys: Vec<&str> = dotted.split('.').collect();
    set_path(tree, &keys, value);
}

fn set_path(node: &mut Value, keys: &[&str], value: Value) {
    let Some((key, rest)) = keys.split_first() else {
        *node = value;
        return;
    };
    if let Value::Array(items) = node {
        if let Some(item) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
            return set_path(item, rest, value);
        }
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let child = node
        .as_object_mut()
        .expect("just made an object")
        .entry(key.to_string())
        .or_insert(Value::Null);
    set_path(child, rest, value);
}

/// Parses `--params` items (`a.b=3,c=x`, possibly repeated); values are YAML scalars.
pub fn parse_overrides(items: &[String]) -> Result<Vec<(String, Value)>, Error> {
    let mut out = Vec::new();
    for item in items.iter().flat_map(|s| s.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, raw) = item
            .split_once('=')
            .or_else(|| item.split_once(':'))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "--params: '{item}' is not key=value (example: --params train.epochs=3)"
                ))
            })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::invalid(format!("--params: empty key in '{item}'")));
        }
        let value = parse_scalar(raw.trim())?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn parse_scalar(raw: &str) -> Result<Value, Error> {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(raw).unwrap_or_else(|_| serde_yaml::Value::String(raw.to_string()));
    let value = serde_json::to_value(yaml)
        .map_err(|e| Error::invalid(format!("--params: cannot use value '{raw}': {e}")))?;
    if value.is_object() || value.is_array() {
        // A scalar was asked for; keep structured-looking input as text.
        return Ok(Value::String(raw.to_string()));
    }
    Ok(value)
}

/// Merges `over` into `base`: mappings merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn looks_up_dotted_paths() {
        let tree = json!({"a": {"b": {"c": 1}}, "x.y": 2});
        assert_eq!(lookup(&tree, "a.b"), Some(&json!({"c": 1})));
        assert_eq!(lookup(&tree, "a.b.c"), Some(&json!(1)));
        assert_eq!(lookup(&tree, "x.y"), Some(&json!(2)));
        assert_eq!(lookup(&tree, "a.z"), None);
    }

    #[test]
    fn overrides_parse_as_yaml_scalars() {
        let items = vec![
            "a.b=3,c=x".to_string(),
            "d=true".to_string(),
            "e=0.5".into(),
        ];
        let parsed = parse_overrides(&items).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("a.b".to_string(), json!(3)),
                ("c".to_string(), json!("x")),
                ("d".to_string(), json!(true)),
                ("e".to_string(), json!(0.5)),
            ]
        );
        assert_eq!(
            parse_overrides(&["k=[1".to_string()]).unwrap()[0].1,
            json!("[1")
        );
        assert_eq!(
            parse_overrides(&["k={a: 1}".to_string()]).unwrap()[0].1,
            json!("{a: 1}")
        );
        assert!(parse_overrides(&["novalue".to_string()]).is_err());
        assert!(parse_overrides(&["=1".to_string()]).is_err());
    }

    #[test]
    fn set_creates_paths_and_merge_is_deep() {
        let mut tree = json!({"a": {"keep": 1, "b": 2}, "s": 5});
        set(&mut tree, "a.b", json!(3));
        set(&mut tree, "s.t", json!(4));
        set(&mut tree, "n.m.o", json!("x"));
        let mut list = json!({"l": [{"a": 1}, {"a": 2}]});
        set(&mut list, "l.1.a", json!(5));
        set(&mut list, "l.0", json!("x"));
        assert_eq!(list, json!({"l": ["x", {"a": 5}]}));
        assert_eq!(
            tree,
            json!({"a": {"keep": 1, "b": 3}, "s": {"t": 4}, "n": {"m": {"o": "x"}}})
        );
        deep_merge(&mut tree, json!({"a": {"b": 9, "new": true}, "s": 1}));
        assert_eq!(tree["a"], json!({"keep": 1, "b": 9, "new": true}));
        assert_eq!(tree["s"], json!(1));
    }
}
