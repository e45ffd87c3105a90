//! Typed node functions.
//!
//! Users register plain Rust functions — `fn split(table: DataFrame, ratio:
//! Params<f64>) -> (DataFrame, DataFrame)` — and the runner adapts them, the
//! way axum turns typed handlers into services: each argument type implements
//! [`FromData`], the return type implements [`NodeReturn`]. The adapted
//! function is erased into an [`ErasedFunction`] right away so that the rest of
//! the runner works with one object type.
//!
//! The declared types are known before anything runs, which is what lets the
//! runner report a mismatch between a dataset and an argument up front.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::context::NodeContext;
use crate::data::{Data, DataValue, TypeDesc};

/// A check of one argument's value made before anything runs (a parameter
/// deserialises into its type).
pub type ArgCheck = fn(&Data) -> Result<(), ArgError>;

/// Errors a node function may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a value cannot be an argument.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArgError {
    /// The value is of another type than the argument.
    #[error("expected {expected}, got {got}")]
    WrongType { expected: TypeDesc, got: TypeDesc },
    /// The parameters do not deserialise into the argument's type.
    #[error("parameters do not fit {target}: {source}")]
    Params {
        target: &'static str,
        source: Arc<serde_json::Error>,
    },
    /// A dataset other than parameters was given for parameters.
    #[error("expected parameters, got {got}")]
    NotParameters { got: TypeDesc },
    /// Fewer values than arguments were given.
    #[error("missing input")]
    Missing,
}

/// Why calling a node function failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// An input value could not be converted to the argument's type.
    #[error("argument {index}: {source}")]
    Argument { index: usize, source: ArgError },
    /// The function returned an error.
    #[error("{0}")]
    Failed(#[source] BoxError),
    /// The function panicked.
    #[error("panicked: {0}")]
    Panicked(PanicMessage),
    /// The function returned a different number of values than declared outputs.
    #[error("returned {got} values for {expected} declared outputs")]
    OutputCount { expected: usize, got: usize },
    /// The function is only declared here: its body runs on engines
    /// (heavy native libraries) that this program does not load.
    #[error("runs on the {} engine{}, which this program does not load", engines.join(" and "), if engines.len() == 1 { "" } else { "s" })]
    EngineNotLoaded { engines: &'static [&'static str] },
}

/// What a panicking node function said (its payload, when it was text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicMessage(pub String);

impl std::fmt::Display for PanicMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node argument type: built from the [`Data`] of one input dataset.
pub trait FromData: Sized + Send + 'static {
    /// True for an argument the runner fills from the node's context (see
    /// [`NodeContext`]) rather than from an input dataset: it is not one of
    /// the node's `inputs:` and counts for none of them.
    const FROM_CONTEXT: bool = false;
    /// The stored type this argument accepts; `None` accepts anything.
    fn accepts() -> Option<TypeDesc>;
    /// The argument's value from the node's context, for `FROM_CONTEXT` types.
    fn from_context(_context: &NodeContext) -> Option<Self> {
        None
    }
    fn from_data(data: &Data) -> Result<Self, ArgError>;
    /// Checks a value before the run. Parameters are known then, so
    /// `Params<T>` deserialises them; other values are checked by type.
    fn check(_data: &Data) -> Result<(), ArgError> {
        Ok(())
    }
}

fn wrong_type<T: 'static>(data: &Data) -> ArgError {
    ArgError::WrongType {
        expected: TypeDesc::of::<T>(),
        got: data.type_desc(),
    }
}

impl<T: DataValue + Clone> FromData for T {
    fn accepts() -> Option<TypeDesc> {
        Some(TypeDesc::of::<T>())
    }
    fn from_data(data: &Data) -> Result<Self, ArgError> {
        data.downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| wrong_type::<T>(data))
    }
}

/// Borrow a large value without cloning it: `fn f(frame: Arc<DataFrame>)`.
impl<T: DataValue> FromData for Arc<T> {
    fn accepts() -> Option<TypeDesc> {
        Some(TypeDesc::of::<T>())
    }
    fn from_data(data: &Data) -> Result<Self, ArgError> {
        data.downcast_arc::<T>()
            .ok_or_else(|| wrong_type::<T>(data))
    }
}

/// Any value at all, untyped.
impl FromData for Data {
    fn accepts() -> Option<TypeDesc> {
        None
    }
    fn from_data(data: &Data) -> Result<Self, ArgError> {
        Ok(data.clone())
    }
}

/// The node's view of its run, filled by the runner: no input dataset.
impl FromData for NodeContext {
    const FROM_CONTEXT: bool = true;
    fn accepts() -> Option<TypeDesc> {
        None
    }
    fn from_context(context: &NodeContext) -> Option<Self> {
        Some(context.clone())
    }
    fn from_data(data: &Data) -> Result<Self, ArgError> {
        Err(wrong_type::<NodeContext>(data))
    }
}

/// A parameter subtree (`params:train`) deserialized into `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromData for Params<T> {
    fn accepts() -> Option<TypeDesc> {
        Some(TypeDesc::of::<serde_json::Value>())
    }
    fn from_data(data: &Data) -> Result<Self, ArgError> {
        let value =
            data.downcast_ref::<serde_json::Value>()
                .ok_or_else(|| ArgError::NotParameters {
                    got: data.type_desc(),
                })?;
        serde_json::from_value(value.clone())
            .map(Params)
            .map_err(|e| ArgError::Params {
                target: std::any::type_name::<T>(),
                source: Arc::new(e),
            })
    }
    fn check(data: &Data) -> Result<(), ArgError> {
        Self::from_data(data).map(|_| ())
    }
}

/// What a node function returns: its output values, in declared order.
pub trait IntoOutputs: Send + 'static {
    /// The type of each output; `None` when the count is only known at run time.
    fn output_types() -> Option<Vec<Option<TypeDesc>>>;
    fn into_outputs(self) -> Vec<Data>;
}

impl<T: DataValue> IntoOutputs for T {
    fn output_types() -> Option<Vec<Option<TypeDesc>>> {
        Some(vec![Some(TypeDesc::of::<T>())])
    }
    fn into_outputs(self) -> Vec<Data> {
        vec![Data::new(self)]
    }
}

impl IntoOutputs for () {
    fn output_types() -> Option<Vec<Option<TypeDesc>>> {
        Some(Vec::new())
    }
    fn into_outputs(self) -> Vec<Data> {
        Vec::new()
    }
}

/// A run-time list of outputs, for functions whose output count depends on the node.
pub struct Outputs(pub Vec<Data>);

impl IntoOutputs for Outputs {
    fn output_types() -> Option<Vec<Option<TypeDesc>>> {
        None
    }
    fn into_outputs(self) -> Vec<Data> {
        self.0
    }
}

macro_rules! impl_tuple_outputs {
    ($($T:ident),+) => {
        impl<$($T: DataValue),+> IntoOutputs for ($($T,)+) {
            fn output_types() -> Option<Vec<Option<TypeDesc>>> {
                Some(vec![$(Some(TypeDesc::of::<$T>())),+])
            }
            #[allow(non_snake_case)]
            fn into_outputs(self) -> Vec<Data> {
                let ($($T,)+) = self;
                vec![$(Data::new($T)),+]
            }
        }
    };
}
impl_tuple_outputs!(A, B);
impl_tuple_outputs!(A, B, C);
impl_tuple_outputs!(A, B, C, D);
impl_tuple_outputs!(A, B, C, D, E);
impl_tuple_outputs!(A, B, C, D, E, F);
impl_tuple_outputs!(A, B, C, D, E, F, G);
impl_tuple_outputs!(A, B, C, D, E, F, G, H);

/// A function's return value: outputs, or `Result<outputs, E>`.
pub trait NodeReturn: Send + 'static {
    type Outputs: IntoOutputs;
    fn into_result(self) -> Result<Self::Outputs, BoxError>;
}

impl<R: IntoOutputs> NodeReturn for R {
    type Outputs = R;
    fn into_result(self) -> Result<R, BoxError> {
        Ok(self)
    }
}

impl<R: IntoOutputs, E: Into<BoxError> + Send + 'static> NodeReturn for Result<R, E> {
    type Outputs = R;
    fn into_result(self) -> Result<R, BoxError> {
        self.map_err(Into::into)
    }
}

/// A typed function usable as a node. Implemented for every `Fn(A1, .., An) -> R`
/// (n ≤ 10) whose arguments are [`FromData`] and result is [`NodeReturn`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be registered as a node function",
    note = "arguments must implement `FromData` (a `DataValue + Clone`, `Arc<T>`, `Params<T>` or `Data`) and the result `NodeReturn` (a `DataValue`, a tuple of them, `()`, or a `Result` of those)"
)]
pub trait NodeFunction<Marker>: Send + Sync + 'static {
    fn arg_types(&self) -> Vec<Option<TypeDesc>>;
    fn arg_checks(&self) -> Vec<ArgCheck>;
    fn output_types(&self) -> Option<Vec<Option<TypeDesc>>>;
    fn call(&self, args: &[Data], context: &NodeContext) -> Result<Vec<Data>, CallError>;
}

macro_rules! impl_node_function {
    ($($A:ident),*) => {
        impl<Func, Ret, $($A),*> NodeFunction<(Ret, $($A,)*)> for Func
        where
            Func: Fn($($A),*) -> Ret + Send + Sync + 'static,
            Ret: NodeReturn,
            $($A: FromData,)*
        {
            fn arg_types(&self) -> Vec<Option<TypeDesc>> {
                <fn($($A),*) -> Ret as NodeSignature>::signature_arg_types()
            }
            fn output_types(&self) -> Option<Vec<Option<TypeDesc>>> {
                <fn($($A),*) -> Ret as NodeSignature>::signature_output_types()
            }
            fn arg_checks(&self) -> Vec<ArgCheck> {
                <fn($($A),*) -> Ret as NodeSignature>::signature_arg_checks()
            }
            #[allow(non_snake_case, unused_mut, unused_variables, unused_assignments)]
            fn call(&self, args: &[Data], context: &NodeContext) -> Result<Vec<Data>, CallError> {
                let mut index = 0usize;
                $(
                    let $A = match $A::FROM_CONTEXT {
                        true => $A::from_context(context).ok_or(CallError::Argument {
                            index,
                            source: ArgError::Missing,
                        })?,
                        false => {
                            let data = args.get(index).ok_or(CallError::Argument {
                                index,
                                source: ArgError::Missing,
                            })?;
                            let value = $A::from_data(data)
                                .map_err(|source| CallError::Argument { index, source })?;
                            index += 1;
                            value
                        }
                    };
                )*
                let result = (self)($($A),*).into_result().map_err(CallError::Failed)?;
                Ok(result.into_outputs())
            }
        }
    };
}

/// A node function's signature as a type, `fn(A, B) -> R`: what planning
/// needs to know of a function (its argument and output types) without its
/// body. A program declares such a function with
/// [`FunctionRegistry::declare`] when the body needs an engine it does not
/// load; the program that loads the engine [`FunctionRegistry::implement`]s
/// it with a function of exactly that type.
pub trait NodeSignature: 'static {
    fn signature_arg_types() -> Vec<Option<TypeDesc>>;
    fn signature_output_types() -> Option<Vec<Option<TypeDesc>>>;
    fn signature_arg_checks() -> Vec<ArgCheck>;
}

macro_rules! impl_node_signature {
    ($($A:ident),*) => {
        impl<Ret: NodeReturn, $($A: FromData),*> NodeSignature for fn($($A),*) -> Ret {
            /// The types of the arguments that read datasets, in order.
            #[allow(unused_mut)]
            fn signature_arg_types() -> Vec<Option<TypeDesc>> {
                let mut types = Vec::new();
                $(if !$A::FROM_CONTEXT {
                    types.push($A::accepts());
                })*
                types
            }
            fn signature_output_types() -> Option<Vec<Option<TypeDesc>>> {
                <Ret::Outputs as IntoOutputs>::output_types()
            }
            #[allow(unused_mut)]
            fn signature_arg_checks() -> Vec<ArgCheck> {
                let mut checks = Vec::new();
                $(if !$A::FROM_CONTEXT {
                    checks.push($A::check as ArgCheck);
                })*
                checks
            }
        }
    };
}

/// Functions and signatures of up to ten arguments.
macro_rules! impl_arities {
    ($($A:ident),*) => {
        impl_node_signature!($($A),*);
        impl_node_function!($($A),*);
    };
}
impl_arities!();
impl_arities!(A1);
impl_arities!(A1, A2);
impl_arities!(A1, A2, A3);
impl_arities!(A1, A2, A3, A4);
impl_arities!(A1, A2, A3, A4, A5);
impl_arities!(A1, A2, A3, A4, A5, A6);
impl_arities!(A1, A2, A3, A4, A5, A6, A7);
impl_arities!(A1, A2, A3, A4, A5, A6, A7, A8);
impl_arities!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
impl_arities!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);

/// The object-safe form every registered function is stored as.
pub trait ErasedFunction: Send + Sync {
    /// Argument types in order; `None` when the function takes any number of anything.
    fn arg_types(&self) -> Option<Vec<Option<TypeDesc>>>;
    /// Output types in order; `None` when the node decides the count.
    fn output_types(&self) -> Option<Vec<Option<TypeDesc>>>;
    /// The checks of the arguments' values before the run; none when the
    /// function takes anything.
    fn arg_checks(&self) -> Vec<ArgCheck> {
        Vec::new()
    }
    fn call(
        &self,
        args: &[Data],
        n_outputs: usize,
        context: &NodeContext,
    ) -> Result<Vec<Data>, CallError>;
}

struct Typed<F, M> {
    func: F,
    _marker: PhantomData<fn() -> M>,
}

impl<F: NodeFunction<M>, M: 'static> ErasedFunction for Typed<F, M> {
    fn arg_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        Some(self.func.arg_types())
    }
    fn output_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        self.func.output_types()
    }
    fn arg_checks(&self) -> Vec<ArgCheck> {
        self.func.arg_checks()
    }
    fn call(
        &self,
        args: &[Data],
        _n_outputs: usize,
        context: &NodeContext,
    ) -> Result<Vec<Data>, CallError> {
        self.func.call(args, context)
    }
}

/// A declared function: its types, and the engines its body needs.
struct Declared {
    engines: &'static [&'static str],
    arg_types: Vec<Option<TypeDesc>>,
    arg_checks: Vec<ArgCheck>,
    output_types: Option<Vec<Option<TypeDesc>>>,
}

impl ErasedFunction for Declared {
    fn arg_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        Some(self.arg_types.clone())
    }
    fn output_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        self.output_types.clone()
    }
    fn arg_checks(&self) -> Vec<ArgCheck> {
        self.arg_checks.clone()
    }
    fn call(
        &self,
        _args: &[Data],
        _n_outputs: usize,
        _context: &NodeContext,
    ) -> Result<Vec<Data>, CallError> {
        Err(CallError::EngineNotLoaded {
            engines: self.engines,
        })
    }
}

/// The built-in `noop`: takes any inputs, produces each output as [`crate::data::Empty`].
struct Noop;

impl ErasedFunction for Noop {
    fn arg_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        None
    }
    fn output_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        None
    }
    fn call(
        &self,
        _args: &[Data],
        n_outputs: usize,
        _context: &NodeContext,
    ) -> Result<Vec<Data>, CallError> {
        Ok((0..n_outputs).map(|_| Data::empty()).collect())
    }
}

/// A function in the registry, with the names of its arguments and outputs
/// (needed only for the map form of `inputs:`/`outputs:` in pipelines.yml).
#[derive(Clone)]
pub struct RegisteredFunction {
    pub name: String,
    /// Part of the function's identity: bump it when its behaviour changes.
    pub version: String,
    pub arg_names: Option<Vec<String>>,
    pub output_names: Option<Vec<String>>,
    pub description: String,
    /// The engines its body runs on (heavy native libraries such as
    /// libtorch), when it needs any.
    pub engines: Vec<String>,
    /// False while the function is only declared (see [`NodeSignature`]).
    loaded: bool,
    func: Arc<dyn ErasedFunction>,
}

impl RegisteredFunction {
    /// Names the function's arguments, in order.
    ///
    /// # Panics
    /// When the function's arity is known and the count differs: a bug in
    /// the program that wires the registry, caught when it starts.
    pub fn args(&mut self, names: &[&str]) -> &mut Self {
        if let Some(types) = self.func.arg_types() {
            assert_eq!(
                types.len(),
                names.len(),
                "function '{}' takes {} argument(s), but .args() names {}: {names:?}",
                self.name,
                types.len(),
                names.len()
            );
        }
        self.arg_names = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn outputs(&mut self, names: &[&str]) -> &mut Self {
        self.output_names = Some(names.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn version(&mut self, version: &str) -> &mut Self {
        self.version = version.to_string();
        self
    }
    pub fn describe(&mut self, text: &str) -> &mut Self {
        self.description = text.to_string();
        self
    }
    pub fn arg_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        self.func.arg_types()
    }
    /// Checks the value given for argument `index` before the run (see
    /// [`FromData::check`]).
    pub fn check_arg(&self, index: usize, value: &Data) -> Result<(), ArgError> {
        match self.func.arg_checks().get(index) {
            Some(check) => check(value),
            None => Ok(()),
        }
    }

    /// The engines a program must load to call the function, when its body
    /// is not here: none for every function this program can call itself.
    pub fn missing_engines(&self) -> &[String] {
        match self.loaded {
            true => &[],
            false => &self.engines,
        }
    }
    pub fn output_types(&self) -> Option<Vec<Option<TypeDesc>>> {
        self.func.output_types()
    }

    /// Calls the function, turning a panic into an error so that one node
    /// cannot take the run down with it.
    pub fn call(
        &self,
        args: &[Data],
        n_outputs: usize,
        context: &NodeContext,
    ) -> Result<Vec<Data>, CallError> {
        let outputs = catch_unwind(AssertUnwindSafe(|| {
            self.func.call(args, n_outputs, context)
        }))
        .map_err(|payload| CallError::Panicked(PanicMessage(panic_message(payload.as_ref()))))??;
        if outputs.len() != n_outputs {
            return Err(CallError::OutputCount {
                expected: n_outputs,
                got: outputs.len(),
            });
        }
        Ok(outputs)
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// All functions a project can name in `func:`.
#[derive(Clone)]
pub struct FunctionRegistry {
    functions: BTreeMap<String, RegisteredFunction>,
    /// The version functions registered from now on carry (part of their
    /// identity in incremental runs): the registering crate's, set once.
    version: String,
}

impl Default for FunctionRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl FunctionRegistry {
    /// A registry holding the built-in `noop`.
    pub fn new() -> Self {
        let mut registry = FunctionRegistry {
            functions: BTreeMap::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        registry
            .insert("noop", Arc::new(Noop))
            .describe("takes any inputs and produces each output as an empty value");
        registry
    }

    /// The version the functions registered after this call carry (a crate
    /// registering its nodes sets its own, once); `.version()` still sets one
    /// function's.
    pub fn default_version(&mut self, version: &str) -> &mut Self {
        self.version = version.to_string();
        self
    }

    /// Registers a typed function under `name`.
    ///
    /// # Panics
    /// When `name` is already registered: that is a bug in the program that
    /// wires the registry, not a user error.
    pub fn register<M: 'static, F: NodeFunction<M>>(
        &mut self,
        name: &str,
        func: F,
    ) -> &mut RegisteredFunction {
        self.insert(
            name,
            Arc::new(Typed {
                func,
                _marker: PhantomData,
            }),
        )
    }

    /// Declares a function of signature `S` whose body runs on `engines`
    /// (all of them: a body may need two libraries), which this program
    /// does not load: plans, dry runs and type checks treat it like any
    /// function; calling it is [`CallError::EngineNotLoaded`]. The program
    /// that loads them all implements it.
    ///
    /// # Panics
    /// When `name` is already registered.
    pub fn declare<S: NodeSignature>(
        &mut self,
        name: &str,
        engines: &'static [&'static str],
    ) -> &mut RegisteredFunction {
        let declared = Declared {
            engines,
            arg_types: S::signature_arg_types(),
            arg_checks: S::signature_arg_checks(),
            output_types: S::signature_output_types(),
        };
        let entry = self.insert(name, Arc::new(declared));
        entry.engines = engines.iter().map(|e| e.to_string()).collect();
        entry.loaded = false;
        entry
    }

    /// Gives the declared function `name` its body, a function of the
    /// declared signature `S` (the program that loads its engine does this).
    ///
    /// # Panics
    /// When `name` was not declared, is already implemented, or was declared
    /// with other types: bugs in the program that wires the registry.
    pub fn implement<S, M>(&mut self, name: &str, func: S) -> &mut RegisteredFunction
    where
        S: NodeSignature + NodeFunction<M>,
        M: 'static,
    {
        let entry = self
            .functions
            .get_mut(name)
            .unwrap_or_else(|| panic!("function '{name}' implemented but never declared"));
        assert!(!entry.loaded, "function '{name}' implemented twice");
        assert!(
            entry.func.arg_types() == Some(S::signature_arg_types())
                && entry.func.output_types() == S::signature_output_types(),
            "function '{name}' implemented with other types than it was declared with"
        );
        entry.func = Arc::new(Typed {
            func,
            _marker: PhantomData,
        });
        entry.loaded = true;
        entry
    }

    /// The engines this program must hand `functions` to: those of every
    /// function among them that is declared here but not implemented.
    pub fn missing_engines<'a>(
        &self,
        functions: impl IntoIterator<Item = &'a str>,
    ) -> std::collections::BTreeSet<String> {
        functions
            .into_iter()
            .filter_map(|name| self.get(name))
            .flat_map(|f| f.missing_engines().iter().cloned())
            .collect()
    }

    fn insert(&mut self, name: &str, func: Arc<dyn ErasedFunction>) -> &mut RegisteredFunction {
        assert!(
            !self.functions.contains_key(name),
            "function '{name}' registered twice"
        );
        self.functions
            .entry(name.to_string())
            .or_insert(RegisteredFunction {
                name: name.to_string(),
                version: self.version.clone(),
                arg_names: None,
                output_names: None,
                description: String::new(),
                engines: Vec::new(),
                loaded: true,
                func,
            })
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredFunction> {
        self.functions.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RunContext;
    use crate::data::Empty;

    fn ctx() -> NodeContext {
        NodeContext::detached(RunContext {
            project_dir: "/project".into(),
            run_id: "run-1".into(),
            ..Default::default()
        })
    }

    fn locate(file: String, context: NodeContext) -> String {
        format!(
            "{} in {}",
            context.resolve(std::path::Path::new(&file)).display(),
            context.run_id()
        )
    }

    #[test]
    fn a_context_argument_reads_no_dataset() {
        let mut r = FunctionRegistry::new();
        r.register("locate", locate).args(&["file"]);
        let f = r.get("locate").unwrap();
        assert_eq!(f.arg_types(), Some(vec![Some(TypeDesc::of::<String>())]));
        let out = f
            .call(&[Data::new("a.txt".to_string())], 1, &ctx())
            .unwrap();
        assert_eq!(
            out[0].downcast_ref::<String>().unwrap(),
            "/project/a.txt in run-1"
        );
        let declared: fn(String, NodeContext) -> String = locate;
        let mut r = FunctionRegistry::new();
        r.declare::<fn(String, NodeContext) -> String>("remote_locate", &["torch"])
            .args(&["file"]);
        r.implement("remote_locate", declared);
        assert_eq!(
            r.get("remote_locate").unwrap().arg_types().unwrap().len(),
            1
        );
    }

    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    fn split(v: Vec<i64>) -> (Vec<i64>, Vec<i64>) {
        let (a, b) = v.split_at(v.len() / 2);
        (a.to_vec(), b.to_vec())
    }

    fn fails(_x: String) -> Result<String, String> {
        Err("bad input".to_string())
    }

    #[derive(serde::Deserialize)]
    struct Ratio {
        ratio: f64,
    }

    fn scale(x: Arc<f64>, p: Params<Ratio>) -> f64 {
        *x * p.0.ratio
    }

    fn registry() -> FunctionRegistry {
        let mut r = FunctionRegistry::new();
        r.register("add", add).args(&["a", "b"]).version("2");
        r.register("split", split).outputs(&["left", "right"]);
        r.register("fails", fails);
        r.register("scale", scale);
        r.register("boom", |_: String| -> String { panic!("kaboom") });
        r.register("nothing", || {});
        r
    }

    #[test]
    fn typed_functions_declare_their_types() {
        let r = registry();
        let add = r.get("add").unwrap();
        assert_eq!(add.version, "2");
        assert_eq!(add.arg_names.as_deref().unwrap(), ["a", "b"]);
        let types = add.arg_types().unwrap();
        assert_eq!(types, vec![Some(TypeDesc::of::<i64>()); 2]);
        assert_eq!(
            r.get("split").unwrap().output_types().unwrap().len(),
            2,
            "a tuple is two outputs"
        );
        assert_eq!(r.get("nothing").unwrap().output_types().unwrap().len(), 0);
        assert_eq!(
            r.get("scale").unwrap().arg_types().unwrap()[1],
            Some(TypeDesc::of::<serde_json::Value>())
        );
        assert!(r.get("noop").unwrap().arg_types().is_none());
        assert!(r.names().any(|n| n == "noop"));
    }

    #[test]
    fn calls_convert_arguments_and_results() {
        let r = registry();
        let out = r
            .get("add")
            .unwrap()
            .call(&[Data::new(2_i64), Data::new(3_i64)], 1, &ctx())
            .unwrap();
        assert_eq!(out[0].downcast_ref::<i64>(), Some(&5));

        let out = r
            .get("split")
            .unwrap()
            .call(&[Data::new(vec![1_i64, 2, 3, 4])], 2, &ctx())
            .unwrap();
        assert_eq!(out[1].downcast_ref::<Vec<i64>>(), Some(&vec![3, 4]));

        let params = serde_json::json!({"ratio": 0.5});
        let out = r
            .get("scale")
            .unwrap()
            .call(&[Data::new(4.0_f64), Data::new(params)], 1, &ctx())
            .unwrap();
        assert_eq!(out[0].downcast_ref::<f64>(), Some(&2.0));

        let out = r
            .get("noop")
            .unwrap()
            .call(&[Data::new(1_i64)], 3, &ctx())
            .unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|d| d.downcast_ref::<Empty>().is_some()));
    }

    #[test]
    fn failures_are_errors_not_panics() {
        let r = registry();
        let err = r
            .get("add")
            .unwrap()
            .call(&[Data::new("x".to_string()), Data::new(1_i64)], 1, &ctx())
            .unwrap_err();
        assert!(matches!(err, CallError::Argument { index: 0, .. }), "{err}");
        assert!(err.to_string().contains("expected i64, got String"));

        let err = r
            .get("fails")
            .unwrap()
            .call(&[Data::new(String::new())], 1, &ctx())
            .unwrap_err();
        assert_eq!(err.to_string(), "bad input");

        let err = r
            .get("boom")
            .unwrap()
            .call(&[Data::new(String::new())], 1, &ctx())
            .unwrap_err();
        assert_eq!(err.to_string(), "panicked: kaboom");

        let err = r
            .get("add")
            .unwrap()
            .call(&[Data::new(1_i64), Data::new(1_i64)], 2, &ctx())
            .unwrap_err();
        assert!(matches!(
            err,
            CallError::OutputCount {
                expected: 2,
                got: 1
            }
        ));

        let err = r
            .get("scale")
            .unwrap()
            .call(
                &[Data::new(1.0_f64), Data::new(serde_json::json!({"r": 1}))],
                1,
                &ctx(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("parameters do not fit"), "{err}");
        let err = r.get("add").unwrap().call(&[], 1, &ctx()).unwrap_err();
        assert!(err.to_string().contains("missing input"));
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn registering_a_name_twice_is_a_bug() {
        let mut r = FunctionRegistry::new();
        r.register("add", add);
        r.register("add", add);
    }

    #[test]
    #[should_panic(expected = "function 'add' takes 2 argument(s), but .args() names 3")]
    fn naming_more_arguments_than_the_function_takes_is_a_bug() {
        FunctionRegistry::new()
            .register("add", add)
            .args(&["a", "b", "c"]);
    }

    #[test]
    fn functions_carry_the_registry_version_unless_given_their_own() {
        let mut r = FunctionRegistry::new();
        r.default_version("7.1.0");
        r.register("add", add).args(&["a", "b"]);
        r.register("add2", add).version("9");
        assert_eq!(r.get("add").unwrap().version, "7.1.0");
        assert_eq!(r.get("add2").unwrap().version, "9");
        assert_eq!(r.get("noop").unwrap().version, env!("CARGO_PKG_VERSION"));
    }

    type AddSignature = fn(i64, i64) -> i64;

    #[test]
    fn a_declared_function_plans_like_any_and_names_its_engine() {
        let mut r = FunctionRegistry::new();
        r.declare::<AddSignature>("heavy_add", &["torch"])
            .args(&["a", "b"]);
        let f = r.get("heavy_add").unwrap();
        assert_eq!(f.arg_types(), Some(vec![Some(TypeDesc::of::<i64>()); 2]));
        assert_eq!(f.output_types(), Some(vec![Some(TypeDesc::of::<i64>())]));
        assert_eq!(f.missing_engines(), ["torch"]);
        let err = f
            .call(&[Data::new(1i64), Data::new(2i64)], 1, &ctx())
            .unwrap_err();
        assert!(matches!(&err, CallError::EngineNotLoaded { engines } if *engines == ["torch"]));
        assert_eq!(
            err.to_string(),
            "runs on the torch engine, which this program does not load"
        );
        let needed = r.missing_engines(["heavy_add", "noop", "unknown"]);
        assert_eq!(needed.into_iter().collect::<Vec<_>>(), vec!["torch"]);
        r.declare::<AddSignature>("two_engine_add", &["ocr", "torch"])
            .args(&["a", "b"]);
        let err = r
            .get("two_engine_add")
            .unwrap()
            .call(&[Data::new(1i64), Data::new(2i64)], 1, &ctx())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "runs on the ocr and torch engines, which this program does not load"
        );
        let needed = r.missing_engines(["heavy_add", "two_engine_add"]);
        assert_eq!(needed.into_iter().collect::<Vec<_>>(), vec!["ocr", "torch"]);
    }

    #[test]
    fn implementing_a_declaration_keeps_its_names_and_loads_it() {
        let mut r = FunctionRegistry::new();
        r.declare::<AddSignature>("heavy_add", &["torch"])
            .args(&["a", "b"])
            .describe("adds");
        r.implement("heavy_add", add as AddSignature);
        let f = r.get("heavy_add").unwrap();
        assert!(f.missing_engines().is_empty());
        assert_eq!(f.engines, ["torch"]);
        assert_eq!(f.description, "adds");
        assert_eq!(
            f.arg_names.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        let out = f
            .call(&[Data::new(1i64), Data::new(2i64)], 1, &ctx())
            .unwrap();
        assert_eq!(out[0].downcast_ref::<i64>(), Some(&3));
        assert!(r.missing_engines(["heavy_add"]).is_empty());
    }

    #[test]
    #[should_panic(expected = "implemented with other types")]
    fn an_implementation_of_other_types_is_a_wiring_bug() {
        let mut r = FunctionRegistry::new();
        r.declare::<AddSignature>("heavy_add", &["torch"]);
        r.implement("heavy_add", split as fn(Vec<i64>) -> (Vec<i64>, Vec<i64>));
    }

    #[test]
    #[should_panic(expected = "never declared")]
    fn implementing_an_undeclared_function_is_a_wiring_bug() {
        let mut r = FunctionRegistry::new();
        r.implement("heavy_add", add as AddSignature);
    }
}
