//! Speech to text: the SpeechToText interface, the whisper engine with its worker pool, and a scripted engine for tests.
//!
//! Not implemented yet: see the open issues.
