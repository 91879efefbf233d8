//! Input checks shared by every backend, so bad input fails the same way whichever store answers
//! and never reaches the storage engine.

use std::time::Duration;

use crate::{RangeRequest, Result, StoreError, WatchRequest};

/// Size limits on keys and values.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// Largest value accepted, in bytes. The default is etcd's default request limit (1.5 MiB),
    /// so an object that fits one backend fits the other.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 4096,
            max_value_bytes: 1536 * 1024,
        }
    }
}

/// Longest TTL accepted: etcd leases are in whole seconds as an i64, and a decade is plenty.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl Limits {
    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if key.len() > self.max_key_bytes {
            return Err(StoreError::KeyTooLarge {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        Ok(())
    }

    pub(crate) fn check_write(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(StoreError::ValueTooLarge {
                len: value.len(),
                max: self.max_value_bytes,
            });
        }
        match ttl {
            Some(ttl) if ttl.is_zero() || ttl > MAX_TTL => Err(StoreError::InvalidTtl(ttl)),
            _ => Ok(()),
        }
    }

    pub(crate) fn check_range(&self, request: &RangeRequest) -> Result<()> {
        check_bounds(&request.start, &request.end)
    }

    pub(crate) fn check_watch(&self, request: &WatchRequest) -> Result<()> {
        check_bounds(&request.start, &request.end)
    }
}

fn check_bounds(start: &str, end: &str) -> Result<()> {
    if start.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if end < start {
        return Err(StoreError::InvalidRange {
            start: start.to_owned(),
            end: end.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_oversized_input() {
        let limits = Limits {
            max_key_bytes: 8,
            max_value_bytes: 4,
        };
        assert!(matches!(limits.check_key(""), Err(StoreError::EmptyKey)));
        assert!(matches!(
            limits.check_key("123456789"),
            Err(StoreError::KeyTooLarge { len: 9, max: 8 })
        ));
        assert!(matches!(
            limits.check_write("k", b"12345", None),
            Err(StoreError::ValueTooLarge { len: 5, max: 4 })
        ));
        assert!(matches!(
            limits.check_write("k", b"1", Some(Duration::ZERO)),
            Err(StoreError::InvalidTtl(_))
        ));
        assert!(
            limits
                .check_write("12345678", b"1234", Some(Duration::from_secs(1)))
                .is_ok()
        );
    }

    #[test]
    fn rejects_inverted_ranges() {
        let limits = Limits::default();
        let inverted = RangeRequest {
            start: "b".into(),
            end: "a".into(),
            ..Default::default()
        };
        assert!(matches!(
            limits.check_range(&inverted),
            Err(StoreError::InvalidRange { .. })
        ));
        assert!(limits.check_range(&RangeRequest::prefix("a")).is_ok());
    }
}
