//! SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00 with 3.1's flow-control frames): the
//! binary layout and the zlib-compressed header blocks, as kubectl, crictl and critest
//! speak them through moby/spdystream.
//!
//! A control frame is `1 | version(15) | type(16) | flags(8) | length(24) | payload`; a
//! data frame is `0 | stream id(31) | flags(8) | length(24) | data`. Header blocks are
//! `count(32)` then `len(32) name len(32) value` pairs, compressed with one zlib stream
//! per direction per connection, primed with [`HEADER_DICTIONARY`], sync-flushed after
//! each block.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::dictionary::HEADER_DICTIONARY;

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
/// The largest frame payload accepted (SPDY allows 2^24-1; headers and data stay far below).
pub const MAX_FRAME: usize = 1 << 24;
/// The largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 1 << 20;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status: the stream was cancelled.
pub const RST_CANCEL: u32 = 5;

/// Header names (lower case) and values; repeated values are NUL-joined on the wire.
pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame type this server has no use for (skipped).
    Other(u16),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY: {0}")]
    Invalid(String),
    #[error("SPDY header compression: {0}")]
    Zlib(String),
}

fn invalid(s: impl Into<String>) -> FrameError {
    FrameError::Invalid(s.into())
}

/// The header (de)compression state of one connection.
pub struct HeaderCodec {
    deflate: Compress,
    inflate: Decompress,
}

impl Default for HeaderCodec {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Set right after init, as zlib requires; cannot fail on a fresh stream.
        let _ = deflate.set_dictionary(&HEADER_DICTIONARY);
        HeaderCodec {
            deflate,
            inflate: Decompress::new(true),
        }
    }
}

impl HeaderCodec {
    /// Compresses one header block (sync-flushed: the peer can decode it at once).
    pub fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, FrameError> {
        let mut raw = Vec::new();
        raw.put_u32(headers.len() as u32);
        for (k, v) in headers {
            raw.put_u32(k.len() as u32);
            raw.put_slice(k.to_ascii_lowercase().as_bytes());
            raw.put_u32(v.len() as u32);
            raw.put_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Zlib(e.to_string()))?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Decompresses one header block.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let mut out = Vec::with_capacity(512);
        let mut input = block;
        loop {
            out.reserve(1024);
            let (before_in, before_out) = (self.inflate.total_in(), out.len());
            let mut dict_set = false;
            match self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&HEADER_DICTIONARY)
                        .map_err(|e| FrameError::Zlib(e.to_string()))?;
                    dict_set = true;
                }
                Err(e) => return Err(FrameError::Zlib(e.to_string())),
            }
            input = &input[(self.inflate.total_in() - before_in) as usize..];
            if out.len() > MAX_HEADER_BLOCK {
                return Err(invalid("header block too large"));
            }
            let progressed = dict_set || out.len() > before_out;
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if !progressed && self.inflate.total_in() == before_in {
                return Err(FrameError::Zlib("no progress".into()));
            }
        }
        parse_header_block(&out)
    }
}

fn parse_header_block(mut b: &[u8]) -> Result<Headers, FrameError> {
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        if b.len() < n {
            return Err(invalid("truncated header block"));
        }
        let (head, rest) = b.split_at(n);
        b = rest;
        Ok(head)
    };
    let be32 = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let count = be32(take(4)?);
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = be32(take(4)?);
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = be32(take(4)?);
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

/// The value of header `name` (the first of NUL-joined values).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The length of a frame starting with these 8 header bytes (payload only).
pub fn payload_len(head: &[u8; 8]) -> usize {
    u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize
}

/// Decodes one frame from its 8 header bytes and payload.
pub fn decode(
    head: &[u8; 8],
    payload: Bytes,
    codec: &mut HeaderCodec,
) -> Result<Frame, FrameError> {
    let flags = head[4];
    if head[0] & 0x80 == 0 {
        return Ok(Frame::Data {
            stream_id: be32(&head[0..4]) & 0x7fff_ffff,
            flags,
            data: payload,
        });
    }
    let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
    if version != VERSION {
        return Err(invalid(format!("unsupported version {version}")));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let p = &payload[..];
    let need = |n: usize| {
        if p.len() < n {
            Err(invalid(format!("control frame {kind} too short")))
        } else {
            Ok(())
        }
    };
    let id = |at: usize| be32(&p[at..at + 4]) & 0x7fff_ffff;
    Ok(match kind {
        SYN_STREAM => {
            need(10)?;
            Frame::SynStream {
                stream_id: id(0),
                associated: id(4),
                priority: p[8] >> 5,
                flags,
                headers: codec.decompress(&p[10..])?,
            }
        }
        SYN_REPLY => {
            need(4)?;
            Frame::SynReply {
                stream_id: id(0),
                flags,
                headers: codec.decompress(&p[4..])?,
            }
        }
        RST_STREAM => {
            need(8)?;
            Frame::RstStream {
                stream_id: id(0),
                status: be32(&p[4..8]),
            }
        }
        SETTINGS => Frame::Settings,
        PING => {
            need(4)?;
            Frame::Ping { id: be32(&p[0..4]) }
        }
        GOAWAY => {
            need(8)?;
            Frame::GoAway {
                last_good: id(0),
                status: be32(&p[4..8]),
            }
        }
        HEADERS => {
            need(4)?;
            Frame::Headers {
                stream_id: id(0),
                headers: codec.decompress(&p[4..])?,
            }
        }
        WINDOW_UPDATE => {
            need(8)?;
            Frame::WindowUpdate {
                stream_id: id(0),
                delta: be32(&p[4..8]) & 0x7fff_ffff,
            }
        }
        other => Frame::Other(other),
    })
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | payload.len() as u32);
    out.put_slice(payload);
}

/// Encodes a frame onto `out`.
pub fn encode(
    frame: &Frame,
    codec: &mut HeaderCodec,
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    let mut p = Vec::new();
    match frame {
        Frame::SynStream {
            stream_id,
            associated,
            priority,
            flags,
            headers,
        } => {
            p.put_u32(*stream_id);
            p.put_u32(*associated);
            p.put_u8(priority << 5);
            p.put_u8(0);
            p.extend(codec.compress(headers)?);
            control(out, SYN_STREAM, *flags, &p);
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            p.put_u32(*stream_id);
            p.extend(codec.compress(headers)?);
            control(out, SYN_REPLY, *flags, &p);
        }
        Frame::RstStream { stream_id, status } => {
            p.put_u32(*stream_id);
            p.put_u32(*status);
            control(out, RST_STREAM, 0, &p);
        }
        Frame::Settings => {
            p.put_u32(0);
            control(out, SETTINGS, 0, &p);
        }
        Frame::Ping { id } => {
            p.put_u32(*id);
            control(out, PING, 0, &p);
        }
        Frame::GoAway { last_good, status } => {
            p.put_u32(*last_good);
            p.put_u32(*status);
            control(out, GOAWAY, 0, &p);
        }
        Frame::Headers { stream_id, headers } => {
            p.put_u32(*stream_id);
            p.extend(codec.compress(headers)?);
            control(out, HEADERS, 0, &p);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            p.put_u32(*stream_id);
            p.put_u32(*delta);
            control(out, WINDOW_UPDATE, 0, &p);
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if data.len() >= MAX_FRAME {
                return Err(invalid("data frame too large"));
            }
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(((*flags as u32) << 24) | data.len() as u32);
            out.put_slice(data);
        }
        Frame::Other(kind) => return Err(invalid(format!("cannot encode frame type {kind}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(frames: &[Frame]) {
        let (mut tx, mut rx) = (HeaderCodec::default(), HeaderCodec::default());
        let mut wire = BytesMut::new();
        for f in frames {
            encode(f, &mut tx, &mut wire).unwrap();
        }
        let mut wire = wire.freeze();
        for f in frames {
            let head: [u8; 8] = wire[..8].try_into().unwrap();
            let n = payload_len(&head);
            let payload = wire.slice(8..8 + n);
            wire = wire.slice(8 + n..);
            assert_eq!(&decode(&head, payload, &mut rx).unwrap(), f);
        }
        assert!(wire.is_empty());
    }

    #[test]
    fn frames_roundtrip_with_one_compression_stream() {
        let h = |t: &str| vec![("streamtype".to_string(), t.to_string())];
        roundtrip(&[
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: h("error"),
            },
            Frame::SynStream {
                stream_id: 3,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: h("stdout"),
            },
            Frame::SynReply {
                stream_id: 3,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
            Frame::RstStream {
                stream_id: 1,
                status: RST_CANCEL,
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 65536,
            },
        ]);
    }

    #[test]
    fn header_stream_uses_the_spdy_dictionary() {
        let mut c = HeaderCodec::default();
        let block = c.compress(&vec![("a".into(), "b".into())]).unwrap();
        // zlib header with FDICT set, then the dictionary's adler32.
        assert_eq!(block[1] & 0x20, 0x20);
        let adler = u32::from_be_bytes([block[2], block[3], block[4], block[5]]);
        let mut a = Decompress::new(true);
        let mut out = Vec::with_capacity(64);
        let e = a
            .decompress_vec(&block, &mut out, FlushDecompress::Sync)
            .unwrap_err();
        assert_eq!(e.needs_dictionary(), Some(adler));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut c = HeaderCodec::default();
        for payload in [
            &b""[..],
            b"\x00\x00\x00\x01",
            b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00xx",
        ] {
            let mut head = [0x80, 0x03, 0x00, 0x01, 0, 0, 0, 0];
            head[7] = payload.len() as u8;
            let _ = decode(&head, Bytes::copy_from_slice(payload), &mut c);
        }
        let head = [0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0];
        assert!(decode(&head, Bytes::new(), &mut c).is_err());
    }
}
