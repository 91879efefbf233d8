//! The binary encoding shared by WAL records and snapshots: little-endian integers,
//! length-prefixed byte strings, and a reader that reports truncation instead of panicking.

use std::sync::Arc;

use bytes::Bytes;

use super::mvcc::VersionData;
use crate::{Result, StoreError};

#[derive(Default)]
pub(crate) struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    pub fn data(&mut self, d: &VersionData) {
        self.i64(d.create_revision);
        self.i64(d.version);
        self.u64(d.expires_at_ms.unwrap_or(0));
        self.bytes(&d.value);
    }
}

pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
}

fn truncated() -> StoreError {
    StoreError::Corrupt("truncated record".into())
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(truncated());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.u64()?).map_err(|_| truncated())?;
        self.take(len)
    }

    pub fn key(&mut self) -> Result<Arc<str>> {
        let raw = self.bytes()?;
        let key =
            std::str::from_utf8(raw).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?;
        Ok(Arc::from(key))
    }

    pub fn data(&mut self) -> Result<Arc<VersionData>> {
        let create_revision = self.i64()?;
        let version = self.i64()?;
        let expires_at_ms = Some(self.u64()?).filter(|&t| t != 0);
        let value = Bytes::copy_from_slice(self.bytes()?);
        Ok(Arc::new(VersionData {
            value,
            create_revision,
            version,
            expires_at_ms,
        }))
    }
}

/// Frames a payload as `[len u32][crc32 u32][payload]`, so a torn write is detected on reading.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads the framed payload at the start of `buf`: `None` at the end of the written data
/// (a zero length, a short frame, or a checksum mismatch from a torn write).
pub(crate) fn unframe(buf: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?);
    let payload = buf.get(8..8 + len)?;
    (len != 0 && crc32fast::hash(payload) == crc).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let framed = frame(b"hello");
        assert_eq!(unframe(&framed), Some(&b"hello"[..]));
        let mut torn = framed.clone();
        torn[10] ^= 1;
        assert_eq!(unframe(&torn), None);
        assert_eq!(unframe(&framed[..framed.len() - 1]), None);
        assert_eq!(unframe(&[0u8; 16]), None);
    }

    #[test]
    fn decoder_reports_truncation() {
        let mut enc = Encoder::default();
        enc.bytes(b"abc");
        let mut dec = Decoder::new(&enc.buf[..enc.buf.len() - 1]);
        assert!(matches!(dec.bytes(), Err(StoreError::Corrupt(_))));
        let mut dec = Decoder::new(&[0xff; 8]);
        assert!(dec.bytes().is_err());
    }
}
