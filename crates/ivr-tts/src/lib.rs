//! Text to speech: the TextToSpeech interface, piper and espeak-ng voices, audio-file prompts, the prompt cache.
//!
//! Not implemented yet: see the open issues.
