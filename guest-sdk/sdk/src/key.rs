/// Types usable as map keys and set elements. Integers are encoded
/// big-endian (signed ones with the sign bit flipped), so byte order is
/// numeric order.
pub trait StorageKey {
    /// The key's bytes.
    fn to_key(&self) -> Vec<u8>;
    /// Decodes a key; `None` if the bytes are not a valid key of this type.
    fn from_key(bytes: &[u8]) -> Option<Self>
    where
        Self: Sized;
}

impl StorageKey for str {
    fn to_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl StorageKey for String {
    fn to_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl StorageKey for Vec<u8> {
    fn to_key(&self) -> Vec<u8> {
        self.clone()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl StorageKey for [u8] {
    fn to_key(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl<const N: usize> StorageKey for [u8; N] {
    fn to_key(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok()
    }
}

impl StorageKey for bool {
    fn to_key(&self) -> Vec<u8> {
        vec![u8::from(*self)]
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl StorageKey for $t {
            fn to_key(&self) -> Vec<u8> {
                self.to_be_bytes().to_vec()
            }
            fn from_key(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_be_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, u128);

macro_rules! signed {
    ($($t:ty => $u:ty),*) => {$(
        impl StorageKey for $t {
            fn to_key(&self) -> Vec<u8> {
                ((*self as $u) ^ (1 << (<$u>::BITS - 1))).to_be_bytes().to_vec()
            }
            fn from_key(bytes: &[u8]) -> Option<Self> {
                let u = <$u>::from_be_bytes(bytes.try_into().ok()?);
                Some((u ^ (1 << (<$u>::BITS - 1))) as $t)
            }
        }
    )*};
}
signed!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

impl<T: StorageKey + ?Sized> StorageKey for &T {
    fn to_key(&self) -> Vec<u8> {
        (**self).to_key()
    }
    fn from_key(_: &[u8]) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}
