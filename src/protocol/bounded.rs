//! Sequences from peers, read with a cap: the first `LIMIT` elements are kept and the rest are
//! skipped as they are read, so a long sequence costs no more memory than `LIMIT` elements.
//!
//! The receiving code used only the first `LIMIT` anyway; reading them this way drops the
//! surplus before it is held. Without it, a message within its byte limit could hold many times
//! its size: an empty address is one byte on the wire and 24 bytes in a `Vec`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// At most this many bytes are reserved up front for a length the sender announced.
const MAX_RESERVE_BYTES: usize = 64 * 1024;

/// For `#[serde(deserialize_with = "bounded::first::<_, _, LIMIT>")]` on a `Vec` field.
pub fn first<'de, D, T, const LIMIT: usize>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_seq(First::<T, LIMIT>(PhantomData))
}

struct First<T, const LIMIT: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const LIMIT: usize> Visitor<'de> for First<T, LIMIT> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let reserve = seq.size_hint().unwrap_or(0).min(LIMIT).min(MAX_RESERVE_BYTES / size_of::<T>().max(1));
        let mut kept = Vec::with_capacity(reserve);
        while kept.len() < LIMIT {
            match seq.next_element()? {
                Some(element) => kept.push(element),
                None => return Ok(kept),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Capped {
        #[serde(deserialize_with = "super::first::<_, _, 3>")]
        items: Vec<Vec<u8>>,
    }

    fn round_trip(n: usize) -> Vec<Vec<u8>> {
        let items: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i]).collect();
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &Capped { items }).unwrap();
        cbor4ii::serde::from_slice::<Capped>(&bytes).unwrap().items
    }

    #[test]
    fn the_first_elements_are_kept_and_the_rest_skipped() {
        assert_eq!(round_trip(0), Vec::<Vec<u8>>::new());
        assert_eq!(round_trip(2), vec![vec![], vec![1]]);
        assert_eq!(round_trip(3), vec![vec![], vec![1], vec![2, 2]]);
        assert_eq!(round_trip(100), vec![vec![], vec![1], vec![2, 2]]);
    }

    #[test]
    fn skipped_elements_must_still_be_well_formed() {
        // [[], [1], [2, 2], [3, <truncated>
        let mut bytes = vec![0xa1, 0x65];
        bytes.extend_from_slice(b"items");
        bytes.extend_from_slice(&[0x84, 0x80, 0x81, 0x01, 0x82, 0x02, 0x02, 0x82, 0x03]);
        assert!(cbor4ii::serde::from_slice::<Capped>(&bytes).is_err());
        // Indefinite length, and a length that runs past the end.
        let mut indefinite = bytes[..7].to_vec();
        indefinite.extend_from_slice(&[0x9f, 0x80, 0x80, 0x80, 0x80, 0x80, 0xff]);
        assert_eq!(cbor4ii::serde::from_slice::<Capped>(&indefinite).unwrap().items.len(), 3);
        indefinite.pop();
        assert!(cbor4ii::serde::from_slice::<Capped>(&indefinite).is_err());
    }
}
