//! The protobuf wire format, read without a schema: a message is a sequence of records, each a
//! field number, a wire type and a payload.

/// Why bytes are not a well-formed protobuf message.
pub(crate) type WireError = &'static str;

/// One record's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (not used by Kubernetes: skipped).
    Fixed64,
    /// Wire type 2: strings, bytes, messages, packed repeated scalars.
    Len(&'a [u8]),
    /// Wire type 5 (not used by Kubernetes: skipped).
    Fixed32,
}

/// Iterates over the records of a message.
pub(crate) struct Records<'a> {
    buf: &'a [u8],
}

impl<'a> Records<'a> {
    /// Records of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Records { buf }
    }
}

/// Reads a base-128 varint from the front of `buf`.
pub(crate) fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        if i == 9 && byte > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes")
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], WireError> {
    if buf.len() < n {
        return Err("field runs past the end of its message");
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u32, Raw<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let record = (|| {
            let key = varint(&mut self.buf)?;
            let number = u32::try_from(key >> 3).map_err(|_| "field number out of range")?;
            if number == 0 {
                return Err("field number 0");
            }
            let raw = match key & 7 {
                0 => Raw::Varint(varint(&mut self.buf)?),
                1 => {
                    take(&mut self.buf, 8)?;
                    Raw::Fixed64
                }
                2 => {
                    let len = varint(&mut self.buf)?;
                    let len = usize::try_from(len).map_err(|_| "length out of range")?;
                    Raw::Len(take(&mut self.buf, len)?)
                }
                5 => {
                    take(&mut self.buf, 4)?;
                    Raw::Fixed32
                }
                3 | 4 => return Err("groups are not supported"),
                _ => return Err("invalid wire type"),
            };
            Ok((number, raw))
        })();
        if record.is_err() {
            // Stop after the first error rather than resynchronising on garbage.
            self.buf = &[];
        }
        Some(record)
    }
}
