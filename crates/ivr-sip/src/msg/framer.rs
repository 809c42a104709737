//! Message framing on stream transports (RFC 3261 sec. 18.3): the header
//! section ends at the first empty line, Content-Length (required) gives the
//! body size. CRLF keep-alives between messages (RFC 5626 sec. 3.5.1) are skipped.
//!
//! Sizes are bounded: a header section longer than `max_head` or a
//! Content-Length above `max_body` is an error, after which the connection
//! must be closed (the stream can no longer be framed).

use super::{content_length, leading_crlf, parse_head, Message, ParseError};

/// Accumulates bytes from a stream and yields whole messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_head: usize,
    max_body: usize,
}

/// One step of framing.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// A whole message.
    Message(Box<Message>),
    /// More bytes are needed.
    NeedMore,
}

impl StreamFramer {
    /// A framer with the given bounds.
    pub fn new(max_head: usize, max_body: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max_head,
            max_body,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Frames the next message. After an error the stream is unusable.
    pub fn next_message(&mut self) -> Result<Framed, ParseError> {
        let skip = leading_crlf(&self.buf);
        if skip > 0 {
            self.buf.drain(..skip);
        }
        if self.buf.is_empty() {
            return Ok(Framed::NeedMore);
        }
        let head = match parse_head(&self.buf, false) {
            Ok(h) => h,
            Err(ParseError::NoHeaderTerminator) => {
                if self.buf.len() > self.max_head {
                    return Err(ParseError::HeadTooLarge(self.max_head));
                }
                return Ok(Framed::NeedMore);
            }
            Err(e) => return Err(e),
        };
        if head.body_start > self.max_head {
            return Err(ParseError::HeadTooLarge(self.max_head));
        }
        let len = content_length(&head.headers)?.ok_or(ParseError::MissingContentLength)?;
        if len > self.max_body {
            return Err(ParseError::BodyTooLarge(self.max_body));
        }
        let end = head.body_start + len;
        if self.buf.len() < end {
            return Ok(Framed::NeedMore);
        }
        let body = self.buf[head.body_start..end].to_vec();
        self.buf.drain(..end);
        Ok(Framed::Message(Box::new(head.into_message(body))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nabcd";

    #[test]
    fn frames_byte_by_byte_and_back_to_back() {
        let mut f = StreamFramer::new(4096, 4096);
        let mut got = 0;
        let stream: Vec<u8> = [b"\r\n\r\n".as_slice(), MSG, MSG].concat();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            while let Framed::Message(m) = f.next_message().unwrap() {
                assert_eq!(m.body(), b"abcd");
                got += 1;
            }
        }
        assert_eq!(got, 2);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn bounds_and_missing_length_are_errors() {
        let mut f = StreamFramer::new(16, 4096);
        f.push(&[b'A'; 40]);
        assert_eq!(f.next_message(), Err(ParseError::HeadTooLarge(16)));
        let mut f = StreamFramer::new(4096, 2);
        f.push(MSG);
        assert_eq!(f.next_message(), Err(ParseError::BodyTooLarge(2)));
        let mut f = StreamFramer::new(4096, 4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(f.next_message(), Err(ParseError::MissingContentLength));
    }
}
