//! What every validator needs to resolve a model's names: components (to group ids and
//! instance ranges) and request classes (to class ids), with errors that name the field and
//! suggest the closest name.

use crate::distributions::{Distribution, DistributionSpec};
use crate::error::{Errors, ModelError, did_you_mean};
use crate::time::SimDuration;

/// Name lookups shared by the validators: component names in file order (a component's
/// index is its group id), class names, and each component's first instance and replicas.
pub struct Resolver<'a> {
    /// Component names in file order.
    pub names: &'a [&'a str],
    /// Request class names; a class id indexes this.
    pub classes: &'a [String],
    /// Id of the first instance of each component.
    pub first_instance: &'a [u32],
    /// Instances of each component.
    pub replicas: &'a [u32],
    /// Instances of each component as its `replicas` says, before an autoscaler grows its
    /// target to its `max`.
    pub replicas_written: &'a [u32],
    /// Simulated time of a run, warm-up included (zero when the model's is invalid).
    pub duration: SimDuration,
    /// True when the model has faults (a shard router then watches its shards fail).
    pub faults: bool,
    /// Each component's kind and fields as written, in file order (a queue checks that its
    /// consumers are a service, and reads their workers).
    pub kinds: &'a [&'a crate::model::spec::KindSpec],
    /// Per component: a caller hedges its calls to it with `cancel` (a service then drops
    /// the losing copies still in its queue).
    pub hedge_cancelled: &'a [bool],
}

impl Resolver<'_> {
    /// The group id of component `name`, or an error at `path`.
    pub fn group(&self, path: &str, name: &str) -> Result<u32, ModelError> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| i as u32)
            .ok_or_else(|| {
                ModelError::new(
                    path,
                    format!(
                        "no component named \"{name}\"{}",
                        did_you_mean(name, self.names.iter().copied())
                    ),
                )
            })
    }
    /// The id of request class `name`, or an error at `path`.
    pub fn class(&self, path: &str, name: &str) -> Result<usize, ModelError> {
        self.classes.iter().position(|c| c == name).ok_or_else(|| {
            ModelError::new(
                path,
                format!(
                    "no workload sends requests of class \"{name}\"; classes are {}{}",
                    quoted_list(self.classes),
                    did_you_mean(name, self.classes.iter().map(String::as_str))
                ),
            )
        })
    }
}

/// The items, each in double quotes, separated by commas.
pub fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the distribution at `path`, reporting what is wrong with it.
pub fn dist(errs: &mut Errors, path: &str, spec: &DistributionSpec) -> Option<Distribution> {
    errs.take(spec.build(path))
}
