//! Mongo-style queries over JSON documents, independent of storage.
//!
//! A filter is parsed once ([`Filter::parse`]), planned against the available
//! indexes ([`choose_plan`]), and evaluated per document ([`matches()`]); sort
//! and index keys share one total order over JSON values ([`compare`]).

mod eval;
mod filter;
mod order;
mod partial;
mod path;
mod plan;
mod project;
mod sort;
#[cfg(test)]
mod test_support;
mod update;

pub use eval::{condition_matches, matches};
pub use filter::{Clause, Condition, ElemMatch, FieldFilter, Filter, FilterError, Pattern};
pub use order::{compare, encode_key, key_bytes, values_equal, TypeClass};
pub use partial::Fields;
pub use path::{FieldPath, PathError, Reached, Segment};
pub use plan::{choose_plan, index_entries, reaches_many, IndexInfo, IndexProbe, Plan, PlanKind};
pub use project::Projection;
pub use sort::{Direction, SortKey, SortSpec};
pub use update::{Update, UpdateError, UpdateErrorKind};
