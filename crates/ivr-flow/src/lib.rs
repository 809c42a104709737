//! Flow engine: TOML flows validated at load, a pure interpreter (events in, actions out), intents, opening hours, Danish/English parsing.
//!
//! Not implemented yet: see the open issues.
