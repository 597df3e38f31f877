//! Handing freed heap memory back to the OS.

/// Hands the heap pages freed by a large one-off job back to the OS. glibc
/// keeps freed blocks in its arenas, where they count in the node's RSS for
/// good: storing a migration's writes frees the overlay that staged them
/// (~80 MiB of small blocks at 100,000 entries), compiling a large
/// component hundreds of MiB of compiler scratch memory.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the OS; no live
    // allocation is touched.
    #[allow(unsafe_code, reason = "one glibc call")]
    unsafe {
        libc::malloc_trim(0);
    }
}
