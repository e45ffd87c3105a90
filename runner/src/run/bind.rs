//! Binding nodes to their functions before anything runs: the function
//! exists, the inputs and outputs match its arguments and results, and the
//! types agree along every edge.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::data::TypeDesc;
use crate::error::Error;
use crate::function::{FunctionRegistry, RegisteredFunction};
use crate::pipeline::{Node, Pipeline};

/// A node ready to call: its function, and the dataset behind each argument
/// and each result, in the function's order.
#[derive(Clone)]
pub struct BoundNode {
    pub node: Arc<Node>,
    pub function: RegisteredFunction,
    pub args: Vec<String>,
    pub outputs: Vec<String>,
}

fn ordinal(i: usize) -> String {
    let n = i + 1;
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Orders written datasets by the function's names (map form) or checks
/// their count (list form).
fn arrange(
    node: &Node,
    what: &str,
    written: &[String],
    keys: Option<&Vec<String>>,
    names: Option<&Vec<String>>,
    count: Option<usize>,
) -> Result<Vec<String>, Error> {
    let fail = |message: String| {
        Error::config(
            node.origin.clone(),
            format!("node '{}' (function '{}'): {message}", node.name, node.func),
        )
    };
    // A function taking anything (noop) takes the datasets as written.
    let (Some(keys), Some(_)) = (keys, count) else {
        if let Some(count) = count {
            if count != written.len() {
                return Err(fail(format!(
                    "the function has {count} {what}, the node gives {}",
                    written.len()
                )));
            }
        }
        return Ok(written.to_vec());
    };
    let Some(names) = names else {
        return Err(fail(format!(
            "{what} are written as a map but the function does not name its {what}; write them as a list"
        )));
    };
    let by_key: HashMap<&str, &String> = keys.iter().map(String::as_str).zip(written).collect();
    if let Some(unknown) = keys.iter().find(|k| !names.contains(k)) {
        return Err(fail(format!(
            "unknown {what} name '{unknown}' (the function has: {})",
            names.join(", ")
        )));
    }
    names
        .iter()
        .map(|name| {
            by_key
                .get(name.as_str())
                .map(|d| (*d).clone())
                .ok_or_else(|| fail(format!("missing {what} '{name}'")))
        })
        .collect()
}

/// Binds every node of the pipeline, in execution order.
pub fn bind(
    pipeline: &Pipeline,
    registry: &FunctionRegistry,
    catalog: &Catalog,
) -> Result<Vec<BoundNode>, Error> {
    let mut produced: HashMap<String, Option<TypeDesc>> = HashMap::new();
    let mut bound = Vec::with_capacity(pipeline.len());
    for node in pipeline.nodes() {
        let function = registry.get(&node.func).ok_or_else(|| {
            Error::config(
                node.origin.clone(),
                format!(
                    "node '{}': unknown function '{}' (registered functions: {})",
                    node.name,
                    node.func,
                    registry.names().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let arg_types = function.arg_types();
        let output_types = function.output_types();
        let args = arrange(
            node,
            "inputs",
            &node.inputs,
            node.input_keys.as_ref(),
            function.arg_names.as_ref(),
            arg_types.as_ref().map(Vec::len),
        )?;
        let outputs = arrange(
            node,
            "outputs",
            &node.outputs,
            node.output_keys.as_ref(),
            function.output_names.as_ref(),
            output_types.as_ref().map(Vec::len),
        )?;

        for (i, dataset) in args.iter().enumerate() {
            let wanted = arg_types.as_ref().and_then(|t| t[i]);
            let held = if catalog.is_declared(dataset) || crate::pipeline::is_parameter(dataset) {
                catalog.value_type(dataset)
            } else {
                produced.get(dataset).copied().flatten()
            };
            if let (Some(wanted), Some(held)) = (wanted, held) {
                if wanted != held {
                    let arg = function
                        .arg_names
                        .as_ref()
                        .map(|n| format!("'{}'", n[i]))
                        .unwrap_or_else(|| format!("{} argument", ordinal(i)));
                    return Err(Error::config(
                        node.origin.clone(),
                        format!(
                            "type mismatch in node '{}': {arg} of '{}' wants {wanted}, but dataset '{dataset}' holds {held}",
                            node.name, node.func
                        ),
                    ));
                }
            }
        }
        for (i, dataset) in outputs.iter().enumerate() {
            let made = output_types.as_ref().and_then(|t| t[i]);
            if let (Some(made), Some(stored)) = (made, catalog.value_type(dataset)) {
                if made != stored {
                    return Err(Error::config(
                        node.origin.clone(),
                        format!(
                            "type mismatch in node '{}': its {} output is {made}, but dataset '{dataset}' stores {stored}",
                            node.name,
                            ordinal(i)
                        ),
                    ));
                }
            }
            produced.insert(dataset.clone(), made);
        }
        bound.push(BoundNode {
            node: Arc::clone(node),
            function: function.clone(),
            args,
            outputs,
        });
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_read_well() {
        let got: Vec<String> = [0, 1, 2, 3, 10, 11, 20, 21]
            .iter()
            .map(|&i| ordinal(i))
            .collect();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "21st", "22nd"]
        );
    }
}
