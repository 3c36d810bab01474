//! Returning freed memory to the system between the phases of a task.

/// Hands freed heap memory back to the system. glibc keeps freed blocks below its (adaptive)
/// mmap threshold in the heap, where they would still count towards the process's resident
/// memory while the next phase allocates its own: the dataset's frames before LightGBM bins,
/// LightGBM's bin sample before boosting, one task's memory before the next task's.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns whole free pages of the heap to the kernel.
        unsafe { malloc_trim(0) };
    }
}
