//! Map keys and values as bytes. The skeleton types are `#[repr(C)]` with every padding byte
//! an explicit field (see `c/include/lb_structs.h`), so their bytes are fully initialised and
//! any byte pattern of the right length is a valid value.

/// A skeleton-generated map type.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain no implicit padding, and accept any bit pattern.
pub unsafe trait Plain: Copy + Default {}

/// The bytes of `value`.
pub fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: `Plain` types have no uninitialised (padding) bytes.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A value read back from `bytes` (which must be exactly its size).
pub fn from_bytes<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() != size_of::<T>() {
        return None;
    }
    let mut value = T::default();
    // SAFETY: any bit pattern is a valid `Plain` value; the lengths match.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (&mut value as *mut T).cast::<u8>(),
            size_of::<T>(),
        )
    };
    Some(value)
}
