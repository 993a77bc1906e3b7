//! Reusing work buffers from record to record.

/// Empties `v` and hands its allocation over to a vector whose element type differs only
/// in lifetimes, so that a buffer of borrowed nodes can be kept between records (typed
/// `'static` while empty). The standard library collects a mapped `into_iter` in place,
/// and nothing is mapped: the vector is empty.
pub(crate) fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_allocation_is_kept_and_the_vector_is_empty() {
        let mut v: Vec<&str> = Vec::with_capacity(64);
        let owned = String::from("x");
        v.push(&owned);
        let ptr = v.as_ptr() as usize;
        let w: Vec<&'static str> = super::recycle(v);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), 64);
        assert_eq!(w.as_ptr() as usize, ptr);
    }
}
