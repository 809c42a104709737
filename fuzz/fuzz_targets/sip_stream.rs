//! Stream framing: the input is split into chunks whose sizes come from the first byte.
#![no_main]

use ivr_sip::msg::framer::{Framed, StreamFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut f = StreamFramer::new(4096, 4096);
    for c in rest.chunks(chunk) {
        f.push(c);
        loop {
            match f.next_message() {
                Ok(Framed::Message(_)) => continue,
                Ok(Framed::NeedMore) => break,
                Err(_) => return,
            }
        }
        assert!(f.buffered() <= 4096 + 4096 + chunk);
    }
});
