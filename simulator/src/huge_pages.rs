//! How the `acs-sim` process takes memory from the kernel: in ordinary pages, never in
//! transparent huge pages.
//!
//! mimalloc, the binary's allocator, advises the kernel to back the regions it maps with
//! transparent huge pages. A simulator whose tables grow by many small rows then has the
//! kernel find and clear a fresh 2 MiB page at a time as it grows. On the virtual machines
//! CI runs on, that cost more than the simulator's own work: under the 1,000-row
//! `create_objects` of BENCHMARKS.md the process spent as much time in the kernel as in
//! its own code. With huge pages turned off for the process, the kernel time fell to a
//! quarter and the throughput rose by about a third. Only binaries turn them off: a
//! program that embeds the simulator keeps its own settings.

/// Asks the kernel to give this process no transparent huge pages from now on (Linux;
/// elsewhere nothing to do). On an error (a kernel without the setting) the process goes
/// on as it was.
pub fn avoid_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_is_left_without_transparent_huge_pages() {
        super::avoid_transparent_huge_pages().unwrap();
        assert!(rustix::thread::transparent_huge_pages_are_disabled().unwrap());
    }
}
