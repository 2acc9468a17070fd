//! Unit tests of the software token's internals: what the file holds, and how ciphertexts
//! are bound to their place.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use yiqian_pki::zeroize::Zeroizing;

/// A reader in a temporary directory and an initialised token with a user PIN.
fn token() -> (tempfile::TempDir, SoftwareToken, Pin, Pin) {
    let dir = tempfile::tempdir().unwrap();
    let reader = SoftwareTokenReader::new(dir.path().to_owned());
    let mut token = reader.create_blank().unwrap();
    let (so, user) = (Pin::random(16), Pin::random(8));
    token.initialise(None, &so, "order-1").unwrap();
    token.init_user_pin(&so, &user).unwrap();
    (dir, token, so, user)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_file_holds_neither_pins_nor_private_keys() {
    let (_dir, mut token, so, user) = token();
    for (id, algorithm) in [(&b"sm2"[..], Algorithm::Sm2), (b"p256", Algorithm::P256)] {
        token.generate_key_pair(&user, algorithm, id).unwrap();
    }
    let bytes = fs::read(token.path()).unwrap();
    assert!(!contains(&bytes, user.expose().as_bytes()));
    assert!(!contains(&bytes, so.expose().as_bytes()));

    let mut session = token.session().unwrap();
    let data_key = session.login(Role::User, &user).unwrap();
    assert!(!contains(&bytes, &data_key[..]));
    assert!(!contains(&bytes, BASE64.encode(&data_key[..]).as_bytes()));
    assert_eq!(session.state.objects.len(), 2);
    for object in &session.state.objects {
        let key = decrypt_key(&data_key, &session.state.serial, object).unwrap();
        let pkcs8 = key.to_pkcs8_der().unwrap();
        assert!(!contains(&bytes, &pkcs8));
        assert!(!contains(&bytes, BASE64.encode(&pkcs8[..]).as_bytes()));
        assert!(!contains(&bytes, hex::encode(&pkcs8[..]).as_bytes()));
        // Nor the private scalar / the end of the key, in any of these encodings.
        let tail = &pkcs8[pkcs8.len() - 24..];
        assert!(!contains(&bytes, tail));
        assert!(!contains(&bytes, hex::encode(tail).as_bytes()));
    }
}

#[test]
fn the_file_is_the_documented_json() {
    let (_dir, mut token, _so, user) = token();
    token.generate_key_pair(&user, Algorithm::Sm2, b"\x01").unwrap();
    let json: serde_json::Value = serde_json::from_slice(&fs::read(token.path()).unwrap()).unwrap();
    assert_eq!(json["format"], "yiqian-software-token/1");
    assert_eq!(json["serial"], token.serial());
    assert_eq!(json["label"], "order-1");
    for slot in ["so_pin", "user_pin"] {
        assert_eq!(json[slot]["kdf"]["algorithm"], "argon2id");
        assert_eq!(json[slot]["kdf"]["memory_kib"], 8192);
        // 12-byte nonce + 32-byte key + 16-byte tag.
        let wrapped = BASE64.decode(json[slot]["wrapped_data_key"].as_str().unwrap()).unwrap();
        assert_eq!(wrapped.len(), 60);
    }
    assert_eq!(json["so_pin"]["tries_left"], 10);
    assert_eq!(json["user_pin"]["tries_left"], 6);
    assert_eq!(json["objects"][0]["id"], "01");
    assert_eq!(json["objects"][0]["algorithm"], "sm2");
    assert!(json["objects"][0]["certificate"].is_null());
    // The two PINs wrap under different salts.
    assert_ne!(json["so_pin"]["kdf"]["salt"], json["user_pin"]["kdf"]["salt"]);
}

#[test]
fn private_keys_are_bound_to_their_object() {
    let (_dir, mut token, _so, user) = token();
    token.generate_key_pair(&user, Algorithm::P256, b"a").unwrap();
    token.generate_key_pair(&user, Algorithm::P256, b"b").unwrap();
    // Swap the encrypted private keys: neither decrypts under the other's ID and public key.
    {
        let _lock = token.lock().unwrap();
        let mut state = token.load().unwrap();
        let first = std::mem::replace(&mut state.objects[0].private_key, Bytes(Vec::new()));
        state.objects[0].private_key = std::mem::replace(&mut state.objects[1].private_key, first);
        token.store(&state).unwrap();
    }
    for id in [&b"a"[..], b"b"] {
        let err = token.signer(&user, id).map(drop).unwrap_err();
        assert!(matches!(&err, TokenError::Io(m) if m.contains("does not decrypt")), "{err:?}");
    }
    // A wrong user PIN is still told apart from a damaged object.
    let wrong = Pin::parse("000000").unwrap();
    assert!(matches!(token.signer(&wrong, b"a"), Err(TokenError::PinIncorrect { .. })));
}

#[test]
fn a_wrapped_data_key_is_bound_to_its_role_and_token() {
    let data_key: DataKey = Zeroizing::new([7; 32]);
    let pin = Pin::parse("12345678").unwrap();
    let slot = wrap_data_key(&data_key, Role::User, "SW00000000000001", &pin).unwrap();
    assert_eq!(*unwrap_data_key(&slot, Role::User, "SW00000000000001", &pin).unwrap(), [7; 32]);
    assert!(unwrap_data_key(&slot, Role::So, "SW00000000000001", &pin).is_none());
    assert!(unwrap_data_key(&slot, Role::User, "SW00000000000002", &pin).is_none());
    assert!(unwrap_data_key(&slot, Role::User, "SW00000000000001", &Pin::parse("12345679").unwrap()).is_none());
}

#[test]
fn costly_or_unknown_kdf_parameters_are_refused() {
    let (_dir, token, _so, _user) = token();
    let original = fs::read(token.path()).unwrap();
    for (field, value) in [
        ("memory_kib", serde_json::json!(4 * 1024 * 1024)),
        ("iterations", serde_json::json!(1000)),
        ("parallelism", serde_json::json!(0)),
        ("algorithm", serde_json::json!("argon2i")),
        ("salt", serde_json::json!("")),
    ] {
        let mut json: serde_json::Value = serde_json::from_slice(&original).unwrap();
        json["user_pin"]["kdf"][field] = value;
        fs::write(token.path(), serde_json::to_vec(&json).unwrap()).unwrap();
        assert!(matches!(token.info(), Err(TokenError::Io(_))), "{field}");
    }
}

#[test]
fn serial_syntax() {
    for _ in 0..100 {
        assert!(is_valid_serial(&random_serial()));
    }
    for bad in
        ["", "SW", "SW0123456789ABC", "SW0123456789ABCDE", "SW0123456789abcd", "XX0123456789ABCD", "SW0123456789ABCG"]
    {
        assert!(!is_valid_serial(bad), "{bad}");
    }
    assert!(is_valid_serial("SW0123456789ABCD"));
}

#[test]
fn associated_data_is_unambiguous() {
    assert_ne!(aad(&[b"ab", b"c"]), aad(&[b"a", b"bc"]));
    assert_ne!(aad(&[b"", b"x"]), aad(&[b"x", b""]));
}
