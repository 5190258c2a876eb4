//! The tensor `data` arrays of an Open Inference Protocol JSON request, found and parsed natively.
//!
//! JSON.parse turns each of a request's numbers into a JS heap number (~170 ns each for the
//! 17-digit decimals clients print, measured; a 100-float request spent more time there than in
//! the rest of decoding and inference together). This scanner walks the body once, finds the
//! arrays of plain numbers at `inputs[*].data` (and the arrays nested inside such a `data`), and
//! parses their numbers into an `f64` buffer; the caller replaces each such array in the text by
//! a placeholder string and lets JSON.parse build only the small rest.
//!
//! Exactness: numbers are parsed by Rust's `f64` parser, correctly rounded like V8's, so every
//! value is the double JSON.parse would produce (1e400 is infinity there too). Anything the scanner
//! is not sure about makes it give up (-1) and the caller uses plain JSON.parse, whose errors then
//! stay exactly what they were: invalid number syntax, broken array syntax, unbalanced brackets,
//! an unterminated string, or a `\u0000` escape anywhere (the placeholders start with U+0000, so
//! a request may not contain one of its own). Keys are compared byte for byte: an escaped key
//! (`"d\u0061ta"`) is simply not recognised, and its array stays on the slow path.

/// Where a container sits in the request, as far as the scan cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
  /// The top-level object.
  Root,
  /// The array that is the top-level `inputs`.
  Inputs,
  /// An object inside `inputs`.
  Input,
  /// The `data` array of an input, or an array nested inside one.
  Data,
  /// Anything else.
  Other,
}

struct Frame {
  is_array: bool,
  role: Role,
  /// Arrays: byte offset of `[`, values written so far, element count, only numbers seen.
  start: usize,
  values_start: usize,
  count: usize,
  numbers_only: bool,
  /// Arrays: 0 just opened, 1 after an element, 2 after a comma.
  state: u8,
  /// Objects: the next string is a key; the last key was `inputs` / `data`.
  expect_key: bool,
  key: Key,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
  Inputs,
  Data,
  Other,
}

/// Give up: the caller parses the body with JSON.parse alone.
pub const GIVE_UP: i64 = -1;
/// The output buffers are too small for this body.
pub const NO_ROOM: i64 = -2;

/// Scans `body`; for each qualifying array (at least `min_elements` numbers) writes four u32 to
/// `spans`: byte offset of `[`, offset just past `]`, first index in `values`, element count.
/// Returns the number of arrays found, or GIVE_UP / NO_ROOM.
pub fn scan(body: &[u8], min_elements: usize, spans: &mut [u32], values: &mut [f64]) -> i64 {
  if body.len() > u32::MAX as usize {
    return GIVE_UP;
  }
  let mut stack: Vec<Frame> = Vec::with_capacity(16);
  let mut nvalues = 0usize;
  let mut nspans = 0usize;
  let mut i = 0usize;
  let n = body.len();
  while i < n {
    let c = body[i];
    match c {
      b' ' | b'\t' | b'\n' | b'\r' => i += 1,
      b'{' | b'[' => {
        let role = match stack.last_mut() {
          None => {
            if c == b'{' {
              Role::Root
            } else {
              Role::Other
            }
          }
          Some(top) => {
            let parent_role = top.role;
            let parent_key = top.key;
            if !element_starts(top, &mut nvalues) {
              return GIVE_UP;
            }
            match (top.is_array, parent_role, c) {
              (false, Role::Root, b'[') if parent_key == Key::Inputs => Role::Inputs,
              (true, Role::Inputs, b'{') => Role::Input,
              (false, Role::Input, b'[') if parent_key == Key::Data => Role::Data,
              (true, Role::Data, b'[') => Role::Data,
              _ => Role::Other,
            }
          }
        };
        stack.push(Frame {
          is_array: c == b'[',
          role,
          start: i,
          values_start: nvalues,
          count: 0,
          numbers_only: true,
          state: 0,
          expect_key: c == b'{',
          key: Key::Other,
        });
        i += 1;
      }
      b']' => {
        let Some(f) = stack.pop() else { return GIVE_UP };
        if !f.is_array || f.state == 2 {
          return GIVE_UP;
        }
        i += 1;
        if f.role == Role::Data && f.numbers_only && f.count >= min_elements {
          if nspans + 4 > spans.len() {
            return NO_ROOM;
          }
          spans[nspans] = f.start as u32;
          spans[nspans + 1] = i as u32;
          spans[nspans + 2] = f.values_start as u32;
          spans[nspans + 3] = f.count as u32;
          nspans += 4;
        } else if f.numbers_only {
          // A pure array that does not qualify (no nested arrays recorded inside it).
          nvalues = f.values_start;
        }
        element_ends(&mut stack);
      }
      b'}' => {
        let Some(f) = stack.pop() else { return GIVE_UP };
        if f.is_array {
          return GIVE_UP;
        }
        i += 1;
        element_ends(&mut stack);
      }
      b',' => {
        if let Some(top) = stack.last_mut() {
          if top.is_array {
            if top.state != 1 {
              return GIVE_UP;
            }
            top.state = 2;
          } else {
            top.expect_key = true;
          }
        }
        i += 1;
      }
      b':' => i += 1,
      b'"' => {
        let Some(end) = string_end(body, i) else { return GIVE_UP };
        let is_key = match stack.last_mut() {
          Some(top) if !top.is_array && top.expect_key => {
            top.expect_key = false;
            top.key = match &body[i + 1..end - 1] {
              b"inputs" => Key::Inputs,
              b"data" => Key::Data,
              _ => Key::Other,
            };
            true
          }
          _ => false,
        };
        if !is_key {
          if let Some(top) = stack.last_mut() {
            if !element_starts(top, &mut nvalues) {
              return GIVE_UP;
            }
          }
          element_ends(&mut stack);
        }
        i = end;
      }
      b'-' | b'0'..=b'9' => {
        let Some(end) = number_end(body, i) else { return GIVE_UP };
        if let Some(top) = stack.last_mut() {
          if top.is_array {
            if top.state == 1 {
              return GIVE_UP;
            }
            top.state = 1;
            top.count += 1;
            if top.role == Role::Data && top.numbers_only {
              if nvalues >= values.len() {
                return NO_ROOM;
              }
              // SAFETY: number_end accepted only ASCII digits, '-', '+', '.', 'e', 'E'.
              let text = unsafe { std::str::from_utf8_unchecked(&body[i..end]) };
              match text.parse::<f64>() {
                Ok(v) => values[nvalues] = v,
                Err(_) => return GIVE_UP,
              }
              nvalues += 1;
            }
          }
        }
        i = end;
      }
      b't' | b'f' | b'n' => {
        let mut end = i;
        while end < n && body[end].is_ascii_lowercase() {
          end += 1;
        }
        if let Some(top) = stack.last_mut() {
          if !element_starts(top, &mut nvalues) {
            return GIVE_UP;
          }
        }
        element_ends(&mut stack);
        i = end;
      }
      _ => return GIVE_UP,
    }
  }
  if !stack.is_empty() {
    return GIVE_UP;
  }
  (nspans / 4) as i64
}

/// A non-number element begins in `top`: checks array syntax and marks the array impure,
/// dropping the values it had recorded (before any nested array records its own).
fn element_starts(top: &mut Frame, nvalues: &mut usize) -> bool {
  if top.is_array {
    if top.state == 1 {
      return false;
    }
    if top.numbers_only {
      top.numbers_only = false;
      *nvalues = top.values_start;
    }
  }
  true
}

/// An element (container, string or literal) just ended inside the new top of the stack.
fn element_ends(stack: &mut [Frame]) {
  if let Some(top) = stack.last_mut() {
    if top.is_array {
      top.state = 1;
      top.count += 1;
      top.numbers_only = false;
    }
  }
}

/// Offset just past the closing quote of the string opening at `start`; None if it does not
/// end, or if it contains a `\u0000` escape (reserved for the placeholders).
fn string_end(body: &[u8], start: usize) -> Option<usize> {
  let mut i = start + 1;
  while i < body.len() {
    match body[i] {
      b'"' => return Some(i + 1),
      b'\\' => {
        if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
          return None;
        }
        i += 2;
      }
      _ => i += 1,
    }
  }
  None
}

/// Offset just past the JSON number starting at `start`, None if its syntax is not JSON's:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_end(body: &[u8], start: usize) -> Option<usize> {
  let digit = |i: usize| body.get(i).is_some_and(|c| c.is_ascii_digit());
  let mut i = start;
  if body[i] == b'-' {
    i += 1;
  }
  if body.get(i) == Some(&b'0') {
    i += 1;
  } else if digit(i) {
    while digit(i) {
      i += 1;
    }
  } else {
    return None;
  }
  if body.get(i) == Some(&b'.') {
    i += 1;
    if !digit(i) {
      return None;
    }
    while digit(i) {
      i += 1;
    }
  }
  if matches!(body.get(i), Some(b'e') | Some(b'E')) {
    i += 1;
    if matches!(body.get(i), Some(b'+') | Some(b'-')) {
      i += 1;
    }
    if !digit(i) {
      return None;
    }
    while digit(i) {
      i += 1;
    }
  }
  // A number runs into a letter or digit only in invalid JSON (`01`, `1x`): leave it to JSON.parse.
  if body.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.') {
    return None;
  }
  Some(i)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn run(s: &str, min: usize) -> (i64, Vec<u32>, Vec<f64>) {
    let mut spans = vec![0u32; 64];
    let mut values = vec![0f64; 1024];
    let k = scan(s.as_bytes(), min, &mut spans, &mut values);
    let used = if k > 0 { (0..k as usize).map(|j| (spans[j * 4 + 2] + spans[j * 4 + 3]) as usize).max().unwrap() } else { 0 };
    (k, spans[..(k.max(0) as usize) * 4].to_vec(), values[..used].to_vec())
  }

  #[test]
  fn finds_input_data_only() {
    let s = r#"{"id":[1,2,3],"inputs":[{"name":"x","shape":[1,3],"data":[1.5,-2,3e2]}],"outputs":[{"data":[1,2,3]}]}"#;
    let (k, spans, values) = run(s, 1);
    assert_eq!(k, 1);
    assert_eq!(&s[spans[0] as usize..spans[1] as usize], "[1.5,-2,3e2]");
    assert_eq!(values, vec![1.5, -2.0, 300.0]);
  }

  #[test]
  fn nested_data_gives_inner_arrays() {
    let s = r#"{"inputs":[{"data":[[1,2],[3,4]]}]}"#;
    let (k, spans, values) = run(s, 1);
    assert_eq!(k, 2);
    assert_eq!(&s[spans[0] as usize..spans[1] as usize], "[1,2]");
    assert_eq!(&s[spans[4] as usize..spans[5] as usize], "[3,4]");
    assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0]);
  }

  #[test]
  fn gives_up_on_what_json_parse_must_judge() {
    for s in [
      r#"{"inputs":[{"data":[1,2,]}]}"#,
      r#"{"inputs":[{"data":[1 2]}]}"#,
      r#"{"inputs":[{"data":[01,2]}]}"#,
      r#"{"inputs":[{"data":[.5,2]}]}"#,
      r#"{"inputs":[{"data":[1.,2]}]}"#,
      r#"{"inputs":[{"data":[-,2]}]}"#,
      r#"{"inputs":[{"data":[+1,2]}]}"#,
      r#"{"inputs":[{"data":[1,2]}]"#,
      r#"{"inputs":[{"data":[1,2]}]}}"#,
      r#"{"inputs":[{"name":"\u0000","data":[1,2]}]}"#,
      r#"{"inputs":[{"name":"x,"data":[1,2]}]}"#,
      r#"{"inputs":[{"data":[NaN,2]}]}"#,
    ] {
      assert_eq!(run(s, 1).0, GIVE_UP, "{s}");
    }
  }

  #[test]
  fn an_impure_outer_array_keeps_its_inner_arrays() {
    let s = r#"{"inputs":[{"data":[7,[1,2],[3,4],8]}]}"#;
    let (k, spans, values) = run(s, 1);
    assert_eq!(k, 2);
    assert_eq!(values[spans[2] as usize..(spans[2] + spans[3]) as usize], [1.0, 2.0]);
    assert_eq!(values[spans[6] as usize..(spans[6] + spans[7]) as usize], [3.0, 4.0]);
  }

  #[test]
  fn leaves_mixed_short_and_escaped_key_arrays() {
    assert_eq!(run(r#"{"inputs":[{"data":[1,"a",2]}]}"#, 1).0, 0);
    assert_eq!(run(r#"{"inputs":[{"data":[1,2]}]}"#, 3).0, 0);
    assert_eq!(run(r#"{"inputs":[{"d\u0061ta":[1,2]}]}"#, 1).0, 0);
    assert_eq!(run(r#"{"inputs":[{"data":[true,false]}]}"#, 1).0, 0);
  }

  #[test]
  fn values_equal_the_standard_parse() {
    let s = r#"{"inputs":[{"data":[-0,1e400,-1e400,1e-400,0.1,3.4028235677973366e38,0.30000000000000004,123456789012345678901234567890]}]}"#;
    let (k, _, values) = run(s, 1);
    assert_eq!(k, 1);
    let want: Vec<f64> = ["-0", "1e400", "-1e400", "1e-400", "0.1", "3.4028235677973366e38", "0.30000000000000004", "123456789012345678901234567890"]
      .iter()
      .map(|t| t.parse().unwrap())
      .collect();
    assert_eq!(values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
  }
}
