//! Dataset factories: catalog keys with `{placeholders}` that match dataset
//! names and fill the captured parts into their entry, ranked the way Kedro
//! ranks them (most specific pattern first).

use serde_json::Value;

/// One `{name}`-style pattern of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(String),
}

impl Pattern {
    /// Parses `"{layer}.{name}_csv"`; `None` when the key has no placeholder.
    pub fn parse(text: &str) -> Option<Pattern> {
        if !text.contains('{') {
            return None;
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}')? + open;
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let name = rest[open + 1..close]
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            parts.push(Part::Placeholder(name));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Some(Pattern {
            text: text.to_string(),
            parts,
        })
    }

    /// Characters outside placeholders: Kedro's measure of specificity.
    pub fn specificity(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.chars().count(),
                Part::Placeholder(_) => 0,
            })
            .sum()
    }

    pub fn placeholders(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Placeholder(_)))
            .count()
    }

    /// The captured values when `name` matches the whole pattern; each
    /// placeholder takes the shortest non-empty text that lets the rest match.
    pub fn matches(&self, name: &str) -> Option<Vec<(String, String)>> {
        let mut captures = Vec::new();
        self.match_from(0, name, &mut captures).then_some(captures)
    }

    fn match_from(&self, index: usize, rest: &str, captures: &mut Vec<(String, String)>) -> bool {
        let Some(part) = self.parts.get(index) else {
            return rest.is_empty();
        };
        match part {
            Part::Literal(lit) => {
                rest.starts_with(lit.as_str())
                    && self.match_from(index + 1, &rest[lit.len()..], captures)
            }
            Part::Placeholder(name) => {
                for (end, _) in rest.char_indices().skip(1).chain([(rest.len(), ' ')]) {
                    if end == 0 {
                        continue;
                    }
                    captures.push((name.clone(), rest[..end].to_string()));
                    if self.match_from(index + 1, &rest[end..], captures) {
                        return true;
                    }
                    captures.pop();
                }
                false
            }
        }
    }
}

/// Sorts patterns as Kedro does: more specific first, then fewer
/// placeholders, then alphabetically.
pub fn rank<T>(items: &mut [T], pattern: impl Fn(&T) -> &Pattern) {
    items.sort_by(|a, b| {
        let (a, b) = (pattern(a), pattern(b));
        b.specificity()
            .cmp(&a.specificity())
            .then(a.placeholders().cmp(&b.placeholders()))
            .then(a.text.cmp(&b.text))
    });
}

/// Fills `{placeholder}`s in every string of an entry.
pub fn fill(value: &Value, captures: &[(String, String)]) -> Value {
    match value {
        Value::String(s) => {
            let mut out = s.clone();
            for (name, captured) in captures {
                out = out.replace(&format!("{{{name}}}"), captured);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, captures)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, captures)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    #[test]
    fn matches_and_captures() {
        assert!(Pattern::parse("plain").is_none());
        let pat = p("{layer}.{name}_csv");
        let captured = pat.matches("raw.cars_csv").unwrap();
        assert_eq!(
            captured,
            vec![
                ("layer".to_string(), "raw".to_string()),
                ("name".to_string(), "cars".to_string())
            ]
        );
        assert!(pat.matches("cars_csv").is_none());
        assert!(
            p("{x}").matches("").is_none(),
            "placeholders are never empty"
        );
        assert_eq!(
            p("{a}-{b}").matches("x-y-z").unwrap()[0].1,
            "x",
            "shortest first"
        );
    }

    #[test]
    fn ranks_like_kedro_and_fills_entries() {
        let mut pats = vec![
            p("{default}"),
            p("{name}_csv"),
            p("{a}_{b}_csv"),
            p("raw_{name}_csv"),
        ];
        rank(&mut pats, |p| p);
        let order: Vec<&str> = pats.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            order,
            ["raw_{name}_csv", "{a}_{b}_csv", "{name}_csv", "{default}"]
        );
        let entry = json!({"type": "polars.CSVDataset", "filepath": "data/{name}.csv", "load_args": {"x": ["{name}"]}});
        let filled = fill(&entry, &[("name".into(), "cars".into())]);
        assert_eq!(filled["filepath"], "data/cars.csv");
        assert_eq!(filled["load_args"]["x"][0], "cars");
        assert_eq!(pats[0].specificity(), 8);
    }
}
