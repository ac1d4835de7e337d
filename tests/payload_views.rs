//! The fast bulk paths of the payload views agree with their element-wise accessors.

use modbus_stack::pdu::{Coils, Registers};
use proptest::prelude::*;

/// Packed bytes and a bit count that needs exactly that many bytes (0–7 padding bits).
fn packed_bits() -> impl Strategy<Value = (Vec<u8>, usize)> {
    proptest::collection::vec(any::<u8>(), 1..=250).prop_flat_map(|bytes| {
        let max = bytes.len() * 8;
        (Just(bytes), (max - 7)..=max)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// `Coils::copy_to` (table-driven, eight bytes per step) gives exactly the bits `get`
    /// reads one by one, for every count, padding pattern and output length.
    #[test]
    fn coil_copy_to_matches_get(
        (bytes, count) in packed_bits(),
        out_len in 0usize..=2100,
    ) {
        let coils = Coils::new(&bytes, count).unwrap();
        // Alternate poison values across cases so a stray write of either value is caught.
        let poison = out_len % 2 == 0;
        let mut out = vec![poison; out_len];
        let copied = coils.copy_to(&mut out);
        prop_assert_eq!(copied, count.min(out_len));
        for (index, &bit) in out.iter().enumerate().take(copied) {
            prop_assert_eq!(Some(bit), coils.get(index), "bit {}", index);
        }
        prop_assert!(out[copied..].iter().all(|&slot| slot == poison), "wrote past the copy");
        prop_assert!(coils.iter().eq((0..count).map(|i| coils.get(i).unwrap())));
    }

    /// `Registers::copy_to` gives exactly what `get` reads, for wire and word views.
    #[test]
    fn register_copy_to_matches_get(
        words in proptest::collection::vec(any::<u16>(), 0..=125),
        out_len in 0usize..=130,
    ) {
        let wire: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        for view in [Registers::try_from(&wire[..]).unwrap(), Registers::from_words(&words)] {
            let mut out = vec![0xA5A5u16; out_len];
            let copied = view.copy_to(&mut out);
            prop_assert_eq!(copied, words.len().min(out_len));
            prop_assert_eq!(&out[..copied], &words[..copied]);
            prop_assert!(out[copied..].iter().all(|&w| w == 0xA5A5));
        }
    }
}
