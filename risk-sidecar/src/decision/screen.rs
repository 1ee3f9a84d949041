//! The first pass over a request body, before it is typed: valid JSON, an object, and
//! no card number or NUL character in any key or value (unknown fields included). One
//! streaming pass that borrows the body's strings: building a `serde_json::Value` to
//! walk, then typing that, cost a decision more than its model did.

use std::fmt::{self, Write as _};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::pan;

/// What the pass found: the first of each, in document order.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    /// Whether the body is a JSON object.
    pub object: bool,
    /// Where a card number is: the dotted path of the value, or of the object whose key
    /// holds it (a key is never repeated back); `Some(None)`: a key of the body itself.
    pub pan: Option<Option<String>>,
    /// The dotted path of the first string (key or value) holding U+0000; for a key, the
    /// key up to the NUL.
    pub nul: Option<String>,
}

/// Scans `body` whole; an error is a syntax error (or nesting deeper than serde_json's
/// limit), with its position.
pub fn screen(body: &str) -> Result<Findings, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(body);
    let mut screen = Screen {
        path: String::with_capacity(64),
        found: Findings::default(),
        top: true,
    };
    (&mut screen).deserialize(&mut de)?;
    de.end()?;
    Ok(screen.found)
}

struct Screen {
    /// The current value's dotted path (`items[1].sku`).
    path: String,
    found: Findings,
    /// Whether the next value is the body itself.
    top: bool,
}

impl Screen {
    fn string(&mut self, s: &str) {
        if self.found.nul.is_none() && s.contains('\0') {
            self.found.nul = Some(self.path.clone());
        }
        if self.found.pan.is_none() && pan::string_is_pan(&self.path, s) {
            self.found.pan = Some(Some(self.path.clone()));
        }
    }

    fn number(&mut self, is_pan: bool) {
        if self.found.pan.is_none() && is_pan {
            self.found.pan = Some(Some(self.path.clone()));
        }
    }

    /// An object's key: checked, then appended to the path. Returns the path's length
    /// before it, to cut back to after the value.
    fn key(&mut self, key: &str) -> usize {
        if self.found.pan.is_none() && pan::contains_pan(key) {
            self.found.pan = Some((!self.path.is_empty()).then(|| self.path.clone()));
        }
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        if self.found.nul.is_none()
            && let Some((before, _)) = key.split_once('\0')
        {
            self.found.nul = Some(format!("{}{before}", self.path));
        }
        self.path.push_str(key);
        len
    }
}

impl<'de> DeserializeSeed<'de> for &mut Screen {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Screen {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.top = false;
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.top = false;
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.top = false;
        self.number(pan::integer_is_pan(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.top = false;
        self.number(pan::integer_is_pan(v.unsigned_abs()));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.top = false;
        self.number(pan::float_is_pan(v));
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.top = false;
        self.string(s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.top = false;
        let mut i = 0usize;
        loop {
            let len = self.path.len();
            let _ = write!(self.path, "[{i}]");
            let more = seq.next_element_seed(&mut *self)?.is_some();
            self.path.truncate(len);
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.found.object |= std::mem::take(&mut self.top);
        while let Some(len) = map.next_key_seed(Key(&mut *self))? {
            map.next_value_seed(&mut *self)?;
            self.path.truncate(len);
        }
        Ok(())
    }
}

/// An object's key, read without copying it.
struct Key<'a>(&'a mut Screen);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<usize, E> {
        Ok(self.0.key(key))
    }
}

#[cfg(test)]
mod tests;
