//! Values that flow between nodes and datasets.
//!
//! A [`Data`] is a shared, type-erased value (`Arc<dyn Any>`). Node functions
//! never see it: the runner converts it to and from the typed arguments and
//! results of the registered function (see [`crate::function`]). Types that
//! may flow through a pipeline implement the marker trait [`DataValue`].

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// Marker for types that may be stored in the catalog and passed between nodes.
///
/// Implement it for your own types with [`data_value!`](crate::data_value).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot flow between nodes",
    note = "declare it with `runner::data_value!({Self});`"
)]
pub trait DataValue: Any + Send + Sync {}

/// Declares types as [`DataValue`]s: `runner::data_value!(MyTable, MyModel);`
#[macro_export]
macro_rules! data_value {
    ($($t:ty),+ $(,)?) => { $(impl $crate::data::DataValue for $t {})+ };
}

data_value!(
    String,
    bool,
    u8,
    i32,
    i64,
    u32,
    u64,
    usize,
    f32,
    f64,
    serde_json::Value,
    polars::prelude::DataFrame,
    Empty
);
impl<T: DataValue> DataValue for Vec<T> {}
impl<T: DataValue> DataValue for Option<T> {}
impl<T: DataValue> DataValue for BTreeMap<String, T> {}
impl<T: DataValue> DataValue for HashMap<String, T> {}

/// The value the built-in `noop` function produces for each of its outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Empty;

/// The Rust type carried by a dataset or wanted by an argument.
#[derive(Clone, Copy, Debug)]
pub struct TypeDesc {
    id: TypeId,
    name: &'static str,
}

impl TypeDesc {
    pub fn of<T: 'static>() -> Self {
        TypeDesc {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }

    /// A short, readable name: `alloc::string::String` becomes `String`.
    pub fn name(&self) -> String {
        short_type_name(self.name)
    }
}

impl PartialEq for TypeDesc {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl fmt::Display for TypeDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Strips module paths from every segment of a type name.
fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for ch in full.chars() {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            segment.push(ch);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            out.push(ch);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

/// A shared, type-erased value.
#[derive(Clone)]
pub struct Data {
    value: Arc<dyn Any + Send + Sync>,
    type_desc: TypeDesc,
}

impl Data {
    pub fn new<T: DataValue>(value: T) -> Self {
        Data {
            value: Arc::new(value),
            type_desc: TypeDesc::of::<T>(),
        }
    }

    pub fn empty() -> Self {
        Data::new(Empty)
    }

    pub fn type_desc(&self) -> TypeDesc {
        self.type_desc
    }

    pub fn is<T: 'static>(&self) -> bool {
        self.type_desc.id == TypeId::of::<T>()
    }

    pub fn is_empty_value(&self) -> bool {
        self.is::<Empty>()
    }

    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }

    pub fn downcast_arc<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.value).downcast::<T>().ok()
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Data<{}>", self.type_desc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_short() {
        assert_eq!(TypeDesc::of::<String>().name(), "String");
        assert_eq!(
            TypeDesc::of::<Vec<Option<String>>>().name(),
            "Vec<Option<String>>"
        );
        assert_eq!(TypeDesc::of::<serde_json::Value>().name(), "Value");
    }

    #[test]
    fn data_downcasts_to_its_type_only() {
        let d = Data::new(42_i64);
        assert!(d.is::<i64>());
        assert_eq!(d.downcast_ref::<i64>(), Some(&42));
        assert!(d.downcast_ref::<u64>().is_none());
        assert_eq!(*d.downcast_arc::<i64>().unwrap(), 42);
        assert!(Data::empty().is_empty_value());
        assert_eq!(format!("{d:?}"), "Data<i64>");
    }
}
