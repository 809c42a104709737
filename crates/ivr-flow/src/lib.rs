//! Flow engine: TOML flows validated at load, a pure interpreter (events in,
//! actions out, time passed in), intents, opening hours, Danish/English
//! parsing and speaking of numbers, dates and times.

pub mod hours;
pub mod speak;
pub mod understand;
