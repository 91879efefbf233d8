//! How much memory hostile JSON patches make `json_patch` allocate: the copy limit is checked
//! before a copy is made, so a patch that would copy too much is refused having allocated
//! little more than its working copy of the document.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use serde_json::{Value, json};
use skiff_apimachinery::patch::json_patch;

/// The system allocator, counting each thread's live bytes and their peak (each test runs on its
/// own thread, so tests running side by side do not see each other's allocations).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn record(change: isize) {
    // `try_with`: the thread's counters may already be gone while it exits.
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + change);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most memory `f` had allocated at once, beyond what was live when it started.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, (peak - start).max(0) as usize)
}

const MIB: usize = 1 << 20;

#[test]
fn doubling_copies_allocate_about_the_copy_limit() {
    // Without the limit, 40 doublings of 1 KiB need a terabyte.
    let doc = json!({"data": {"a": "x".repeat(1024)}});
    let operations: Vec<Value> = (0..40)
        .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/x{i}")}))
        .collect();
    let patch = Value::Array(operations);
    let (result, peak) = peak_allocation(|| json_patch(&doc, &patch));
    assert_eq!(result.unwrap_err().http_status(), 422);
    // The copies made stay within 3 MiB of JSON, a little more as `Value`s.
    assert!(peak < 8 * MIB, "peak {} MiB", peak / MIB);
}

#[test]
fn a_copy_over_the_limit_is_refused_before_it_is_made() {
    let doc = json!({"big": "x".repeat(4 * MIB)});
    let patch = json!([{"op": "copy", "from": "/big", "path": "/copy"}]);
    let (result, peak) = peak_allocation(|| json_patch(&doc, &patch));
    assert_eq!(result.unwrap_err().http_status(), 422);
    // The patch's working copy of the document is 4 MiB; a copy of the string would be 4 more.
    assert!(peak < 5 * MIB, "peak {} MiB", peak / MIB);
}

#[test]
fn too_many_operations_are_refused_before_any_is_applied() {
    let doc = json!({"big": "x".repeat(4 * MIB)});
    let patch = Value::Array(vec![
        json!({"op": "test", "path": "/a", "value": 1});
        10_001
    ]);
    let (result, peak) = peak_allocation(|| json_patch(&doc, &patch));
    assert_eq!(result.unwrap_err().http_status(), 413);
    // Not even the working copy of the document was made.
    assert!(peak < MIB, "peak {} KiB", peak >> 10);
}
