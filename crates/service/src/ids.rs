//! Opaque, URL-safe, unguessable identifiers.

use countersign_domain::IdSource;
use rand::distributions::{Distribution, Uniform};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// 36^25 ≈ 2^129: not guessable, collisions negligible.
pub const ID_LEN: usize = 25;

/// 25 lowercase alphanumerics from the OS-seeded thread RNG.
pub fn new_id() -> String {
    let pick = Uniform::from(0..ALPHABET.len());
    let mut rng = rand::thread_rng();
    (0..ID_LEN)
        .map(|_| char::from(ALPHABET[pick.sample(&mut rng)]))
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn new_id(&mut self) -> String {
        new_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_25_lowercase_alphanumerics_and_distinct() {
        let ids: HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), ID_LEN);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{id}"
            );
        }
    }
}
