//! `multipart/x-mixed-replace` MJPEG: the writer the server uses and a
//! push/pull reader for clients (tests, the benchmark, HTTP-MJPEG pulls).
//!
//! Each part is encoded once per frame with its *closing* boundary appended:
//! a browser shows a part only when it sees the boundary that ends it, so a
//! stream that writes the boundary before each part instead shows every frame
//! one frame late. The server writes [`PREAMBLE`] once, then parts.

use bytes::{Buf, Bytes, BytesMut};

/// The boundary camgate writes.
pub const BOUNDARY: &str = "frame";
/// The response content type for [`BOUNDARY`].
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=frame";
/// The bytes that open a stream: the first boundary line.
pub const PREAMBLE: &[u8] = b"--frame\r\n";
const CLOSING: &[u8] = b"\r\n--frame\r\n";

/// One encoded part: headers, JPEG and the closing boundary in one buffer.
#[derive(Debug, Clone)]
pub struct Part {
    bytes: Bytes,
    jpeg_start: usize,
    jpeg_len: usize,
}

impl Part {
    /// Encodes one JPEG as a part (one copy, made once per frame).
    pub fn encode(jpeg: &[u8]) -> Part {
        let header = format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        let mut buf = BytesMut::with_capacity(header.len() + jpeg.len() + CLOSING.len());
        buf.extend_from_slice(header.as_bytes());
        buf.extend_from_slice(jpeg);
        buf.extend_from_slice(CLOSING);
        Part {
            bytes: buf.freeze(),
            jpeg_start: header.len(),
            jpeg_len: jpeg.len(),
        }
    }

    /// The whole part as written to an MJPEG response.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The JPEG alone, sharing the part's memory.
    pub fn jpeg(&self) -> Bytes {
        self.bytes
            .slice(self.jpeg_start..self.jpeg_start + self.jpeg_len)
    }
}

/// Why a multipart stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// A part's headers exceeded [`Reader::MAX_HEADER`] bytes.
    #[error("part headers longer than {0} bytes")]
    HeadersTooLong(usize),
    /// A part is larger than the reader's limit.
    #[error("part of {len} bytes exceeds the limit of {limit}")]
    PartTooLarge {
        /// Declared or observed size.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A `Content-Length` header that is not a number.
    #[error("bad Content-Length header")]
    BadContentLength,
    /// No boundary was found within the first [`Reader::MAX_HEADER`] bytes.
    #[error("no multipart boundary found")]
    NoBoundary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Boundary,
    Headers,
    Body(Option<usize>),
    Done,
}

/// A streaming multipart reader: [`Reader::push`] bytes as they arrive, then
/// [`Reader::pull`] parts until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Reader {
    delimiter: Vec<u8>,
    buf: BytesMut,
    state: State,
    max_part: usize,
    seen_boundary: bool,
}

impl Reader {
    /// Longest header block accepted.
    pub const MAX_HEADER: usize = 8 * 1024;

    /// A reader for `boundary` (without the leading dashes), parts ≤ 16 MiB.
    pub fn new(boundary: &str) -> Reader {
        Reader::with_limit(boundary, 16 * 1024 * 1024)
    }

    /// A reader for `boundary` with a part size limit.
    pub fn with_limit(boundary: &str, max_part: usize) -> Reader {
        let boundary = boundary.trim_matches('"');
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(boundary.strip_prefix("--").unwrap_or(boundary).as_bytes());
        Reader {
            delimiter,
            buf: BytesMut::new(),
            state: State::Boundary,
            max_part,
            seen_boundary: false,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.state != State::Done {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True once the closing delimiter (`--boundary--`) was read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next whole part's body, `Ok(None)` when more bytes are needed.
    pub fn pull(&mut self) -> Result<Option<Bytes>, MultipartError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Boundary => {
                    let Some(at) = find(&self.buf, &self.delimiter) else {
                        let keep = self.delimiter.len();
                        if self.buf.len() > keep {
                            if !self.seen_boundary && self.buf.len() > Self::MAX_HEADER {
                                return Err(MultipartError::NoBoundary);
                            }
                            // Discard what cannot be the start of a delimiter.
                            let drop = self.buf.len() - keep;
                            self.buf.advance(drop);
                        }
                        return Ok(None);
                    };
                    let line_start = at + self.delimiter.len();
                    let Some(eol) = find(&self.buf[line_start..], b"\n") else {
                        if self.buf.len() - line_start > Self::MAX_HEADER {
                            return Err(MultipartError::HeadersTooLong(Self::MAX_HEADER));
                        }
                        return Ok(None);
                    };
                    let closing = self.buf[line_start..].starts_with(b"--");
                    self.buf.advance(line_start + eol + 1);
                    self.seen_boundary = true;
                    if closing {
                        self.state = State::Done;
                        self.buf.clear();
                        return Ok(None);
                    }
                    self.state = State::Headers;
                }
                State::Headers => {
                    let (end, sep) = match (find(&self.buf, b"\r\n\r\n"), find(&self.buf, b"\n\n"))
                    {
                        (Some(a), Some(b)) if b < a => (b, 2),
                        (Some(a), _) => (a, 4),
                        (None, Some(b)) => (b, 2),
                        (None, None) => {
                            if self.buf.len() > Self::MAX_HEADER {
                                return Err(MultipartError::HeadersTooLong(Self::MAX_HEADER));
                            }
                            return Ok(None);
                        }
                    };
                    if end > Self::MAX_HEADER {
                        return Err(MultipartError::HeadersTooLong(Self::MAX_HEADER));
                    }
                    let len = content_length(&self.buf[..end])?;
                    if let Some(len) = len
                        && len > self.max_part
                    {
                        return Err(MultipartError::PartTooLarge {
                            len,
                            limit: self.max_part,
                        });
                    }
                    self.buf.advance(end + sep);
                    self.state = State::Body(len);
                }
                State::Body(Some(len)) => {
                    if self.buf.len() < len {
                        self.buf.reserve(len - self.buf.len());
                        return Ok(None);
                    }
                    let body = self.buf.split_to(len).freeze();
                    self.state = State::Boundary;
                    return Ok(Some(body));
                }
                State::Body(None) => {
                    // No Content-Length: the body runs to the next delimiter,
                    // minus the line break that precedes it.
                    let Some(at) = find(&self.buf, &self.delimiter) else {
                        if self.buf.len() > self.max_part {
                            return Err(MultipartError::PartTooLarge {
                                len: self.buf.len(),
                                limit: self.max_part,
                            });
                        }
                        return Ok(None);
                    };
                    let mut end = at;
                    if self.buf[..end].ends_with(b"\r\n") {
                        end -= 2;
                    } else if self.buf[..end].ends_with(b"\n") {
                        end -= 1;
                    }
                    let body = self.buf.split_to(end).freeze();
                    self.state = State::Boundary;
                    return Ok(Some(body));
                }
            }
        }
    }
}

fn content_length(headers: &[u8]) -> Result<Option<usize>, MultipartError> {
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon].eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(&line[colon + 1..])
                .map_err(|_| MultipartError::BadContentLength)?;
            return v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| MultipartError::BadContentLength);
        }
    }
    Ok(None)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = haystack[from..=haystack.len() - needle.len()]
        .iter()
        .position(|&b| b == first)
    {
        let at = from + i;
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: &[&[u8]]) -> Vec<u8> {
        let mut s = PREAMBLE.to_vec();
        for p in parts {
            s.extend_from_slice(Part::encode(p).bytes());
        }
        s
    }

    #[test]
    fn part_layout_ends_with_closing_boundary() {
        let p = Part::encode(b"JPEGDATA");
        assert_eq!(
            &p.bytes()[..],
            b"Content-Type: image/jpeg\r\nContent-Length: 8\r\n\r\nJPEGDATA\r\n--frame\r\n"
        );
        assert_eq!(&p.jpeg()[..], b"JPEGDATA");
    }

    #[test]
    fn reads_parts_split_at_every_index() {
        let parts: [&[u8]; 3] = [b"one", b"two--frame-lookalike", b"\xff\xd8three\xff\xd9"];
        let s = stream(&parts);
        for split in 0..s.len() {
            let mut r = Reader::new(BOUNDARY);
            let mut got = Vec::new();
            for chunk in [&s[..split], &s[split..]] {
                r.push(chunk);
                while let Some(p) = r.pull().expect("valid") {
                    got.push(p);
                }
            }
            let got: Vec<&[u8]> = got.iter().map(|b| &b[..]).collect();
            assert_eq!(got, parts, "split at {split}");
        }
    }

    #[test]
    fn reads_esp32_camerawebserver_shape_without_length() {
        // The stock CameraWebServer writes the boundary before each part.
        let b = "123456789000000000000987654321";
        let s = format!(
            "\r\n--{b}\r\nContent-Type: image/jpeg\r\nX-Timestamp: 1.000001\r\n\r\nAAAA\r\n--{b}\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nBBBB\r\n--{b}\r\n"
        );
        let mut r = Reader::new(b);
        r.push(s.as_bytes());
        assert_eq!(r.pull().expect("ok").as_deref(), Some(&b"AAAA"[..]));
        assert_eq!(r.pull().expect("ok").as_deref(), Some(&b"BBBB"[..]));
        assert_eq!(r.pull().expect("ok"), None);
    }

    #[test]
    fn limits() {
        let mut r = Reader::with_limit(BOUNDARY, 4);
        r.push(&stream(&[b"too long"]));
        assert_eq!(
            r.pull(),
            Err(MultipartError::PartTooLarge { len: 8, limit: 4 })
        );
        let mut r = Reader::new(BOUNDARY);
        r.push(&vec![b'x'; Reader::MAX_HEADER + 100]);
        assert_eq!(r.pull(), Err(MultipartError::NoBoundary));
        let mut r = Reader::new(BOUNDARY);
        r.push(b"--frame\r\nContent-Length: nope\r\n\r\n");
        assert_eq!(r.pull(), Err(MultipartError::BadContentLength));
        let mut r = Reader::new(BOUNDARY);
        r.push(b"--frame--\r\n");
        assert_eq!(r.pull(), Ok(None));
        assert!(r.is_done());
    }
}
