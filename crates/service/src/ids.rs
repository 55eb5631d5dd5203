//! Opaque, URL-safe, unguessable identifiers.

use countersign_domain::IdSource;
use rand::distributions::{Distribution, Uniform};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// 36^25 ≈ 2^129: not guessable, collisions negligible.
pub const ID_LEN: usize = 25;

/// 25 lowercase alphanumerics from the OS-seeded thread RNG.
pub fn new_id() -> String {
    let mut id = String::with_capacity(ID_LEN);
    push_new_id(&mut id);
    id
}

/// A new id (see [`new_id`]) at the end of `text`: a prefixed id in one allocation.
pub fn push_new_id(text: &mut String) {
    let pick = Uniform::from(0..ALPHABET.len());
    let mut rng = rand::thread_rng();
    text.extend((0..ID_LEN).map(|_| char::from(ALPHABET[pick.sample(&mut rng)])));
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
    fn a_pushed_id_follows_the_text_already_there() {
        let mut text = String::from("req_");
        push_new_id(&mut text);
        let id = text.strip_prefix("req_").expect("the prefix is kept");
        assert_eq!(id.len(), ID_LEN);
        assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{text}");
    }

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
