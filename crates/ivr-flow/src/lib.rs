//! Flow engine: TOML flows validated at load, a pure interpreter (events in,
//! actions out, time passed in), intents, opening hours, Danish/English
//! parsing and speaking of numbers, dates and times.
//!
//! The engine uses:
//! - [`FlowStore::load`] / [`FlowStore::reload`] / [`FlowStore::route`]
//!   (tenants -> municipality snapshot + entry flow),
//! - [`Interpreter::new`] / [`Interpreter::start`] / [`Interpreter::handle`]
//!   with [`Event`]s in and [`Action`]s out,
//! - [`FlowStore::static_prompts`] to pre-render prompts at load.
//!
//! The flow language is documented in `docs/flows.md`.

pub mod carry;
pub mod diag;
pub mod ending;
pub mod eval;
pub mod hours;
pub mod intents;
pub mod interp;
pub mod keys;
pub mod knowledge;
pub mod lexical;
pub mod load;
pub mod model;
pub mod semantic;
pub mod sim;
pub mod speak;
pub mod store;
pub mod understand;
pub mod vector_cache;

pub use diag::{Diagnostic, Severity};
pub use interp::{
    Action, Answers, CallContext, CallRecord, Event, Interpreter, Meaning, MeaningWanted, Outcome,
    QuestionRecord, Request, Response, Route, Slot, Value,
};
pub use ivr_core::Speech;
pub use knowledge::KnowledgeBase;
pub use load::{load, Deployment, Loaded, Tenant};
pub use model::{Flow, Municipality};
pub use store::{FlowStore, StoreError, StoreOptions};
