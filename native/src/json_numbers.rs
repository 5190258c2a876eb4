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
  /// The `shape` array of an input (only the plain-form layout cares).
  Shape,
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
  /// Objects (plain-form check only): 0 just opened, 1 after a key, 2 after its colon, 3 after
  /// a value, 4 after a comma.
  state: u8,
  /// Objects: the next string is a key; the last key seen.
  expect_key: bool,
  key: Key,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
  Inputs,
  Data,
  Id,
  Name,
  Datatype,
  Shape,
  Other,
}

fn key_of(text: &[u8]) -> Key {
  match text {
    b"inputs" => Key::Inputs,
    b"data" => Key::Data,
    b"id" => Key::Id,
    b"name" => Key::Name,
    b"datatype" => Key::Datatype,
    b"shape" => Key::Shape,
    _ => Key::Other,
  }
}

/// Give up: the caller parses the body with JSON.parse alone.
pub const GIVE_UP: i64 = -1;
/// The output buffers are too small for this body.
pub const NO_ROOM: i64 = -2;

/// Most dimensions a plain-form input may have (the protocol layer allows no more).
pub const MAX_DIMS: usize = 8;
/// u32 per input in the layout: name (start, end), datatype (start, end), data span index,
/// dimension count, dimensions.
pub const LAYOUT_INPUT: usize = 6 + MAX_DIMS;
/// u32 before the first input in the layout: plain form (0/1), has id (0/1), id (start, end),
/// input count, three reserved.
pub const LAYOUT_HEAD: usize = 8;

/// The fields of the input object being scanned, for the plain-form layout.
#[derive(Default)]
struct InputFields {
  name: Option<(u32, u32)>,
  datatype: Option<(u32, u32)>,
  dims: Option<usize>,
  dim: [u32; MAX_DIMS],
  data_seen: bool,
  span: Option<u32>,
}

/// Whether the request is in the plain form nearly every client sends, and where its parts are.
///
/// Plain form: valid JSON whose top-level object has `inputs` and optionally a string `id`, and
/// nothing else; each input has exactly `name` and `datatype` strings, `shape` of plain
/// non-negative integers and flat numeric `data` that the scan parsed; no string has an escape
/// or a control character. Such a request's document can be built from the layout without
/// JSON.parse, and equals what JSON.parse would build. Anything else, valid or not, only clears
/// the flag: the spans and values are unaffected, and the caller takes its usual path.
struct Plain<'a> {
  ok: bool,
  out: &'a mut [u32],
  inputs: usize,
  has_inputs: bool,
  id: Option<(u32, u32)>,
  root_done: bool,
  cur: InputFields,
}

impl Plain<'_> {
  fn fail(&mut self) {
    self.ok = false;
  }

  /// A value starts in `top` (None: at the top level): objects must be right after a colon.
  fn value_starts(&mut self, top: Option<&mut Frame>) {
    match top {
      None => {
        if self.root_done {
          self.fail();
        }
      }
      Some(f) if !f.is_array => {
        if f.state == 2 {
          f.state = 3;
        } else {
          self.fail();
        }
      }
      Some(_) => {}
    }
  }

  /// A string value (not a key) in an object, between `start` and `end` (quotes excluded).
  fn string_value(&mut self, top: &Frame, start: usize, end: usize) {
    let span = Some((start as u32, end as u32));
    match (top.role, top.key) {
      (Role::Root, Key::Id) if self.id.is_none() => self.id = span,
      (Role::Input, Key::Name) if self.cur.name.is_none() => self.cur.name = span,
      (Role::Input, Key::Datatype) if self.cur.datatype.is_none() => self.cur.datatype = span,
      _ => self.fail(),
    }
  }

  /// A container opens with `role` under an object whose last key is `key`.
  fn container_opens(&mut self, parent: Option<(Role, bool, Key)>, role: Role, is_array: bool) {
    match (parent, role) {
      (None, Role::Root) => {}
      (Some((Role::Root, false, Key::Inputs)), Role::Inputs) if !self.has_inputs => self.has_inputs = true,
      (Some((Role::Inputs, true, _)), Role::Input) => self.cur = InputFields::default(),
      (Some((Role::Input, false, Key::Data)), Role::Data) if !self.cur.data_seen => self.cur.data_seen = true,
      (Some((Role::Input, false, Key::Shape)), Role::Shape) if is_array && self.cur.dims.is_none() => self.cur.dims = Some(0),
      _ => self.fail(),
    }
  }

  /// A plain non-negative integer in a shape array.
  fn dimension(&mut self, text: &[u8]) {
    let plain = !text.is_empty() && text.len() <= 9 && text.iter().all(u8::is_ascii_digit) && (text[0] != b'0' || text.len() == 1);
    let Some(d) = self.cur.dims.filter(|&d| d < MAX_DIMS && plain) else { return self.fail() };
    self.cur.dim[d] = text.iter().fold(0u32, |acc, c| acc * 10 + (c - b'0') as u32);
    self.cur.dims = Some(d + 1);
  }

  /// An input object closes: records it when complete.
  fn input_ends(&mut self) {
    let f = std::mem::take(&mut self.cur);
    let (Some(name), Some(dt), Some(dims), Some(span)) = (f.name, f.datatype, f.dims, f.span) else { return self.fail() };
    let at = LAYOUT_HEAD + self.inputs * LAYOUT_INPUT;
    if at + LAYOUT_INPUT > self.out.len() {
      return self.fail();
    }
    let rec = &mut self.out[at..at + LAYOUT_INPUT];
    rec[0] = name.0;
    rec[1] = name.1;
    rec[2] = dt.0;
    rec[3] = dt.1;
    rec[4] = span;
    rec[5] = dims as u32;
    rec[6..6 + dims].copy_from_slice(&f.dim[..dims]);
    self.inputs += 1;
  }
}

/// Scans `body`; for each qualifying array (at least `min_elements` numbers) writes four u32 to
/// `spans`: byte offset of `[`, offset just past `]`, first index in `values`, element count.
/// Returns the number of arrays found, or GIVE_UP / NO_ROOM. When `layout` has room for the
/// head and the request is in plain form (see [`Plain`]), writes its layout there with
/// `layout[0] = 1`; otherwise `layout[0] = 0`.
pub fn scan(body: &[u8], min_elements: usize, spans: &mut [u32], values: &mut [f64], layout: &mut [u32]) -> i64 {
  if body.len() > u32::MAX as usize {
    return GIVE_UP;
  }
  let room = layout.len() >= LAYOUT_HEAD;
  let mut plain = Plain { ok: room, out: layout, inputs: 0, has_inputs: false, id: None, root_done: false, cur: InputFields::default() };
  let k = scan_into(body, min_elements, spans, values, &mut plain);
  if room {
    let head = if k > 0 && plain.ok && plain.root_done && plain.has_inputs && plain.inputs > 0 {
      let (id_start, id_end) = plain.id.unwrap_or((0, 0));
      [1, u32::from(plain.id.is_some()), id_start, id_end, plain.inputs as u32, 0, 0, 0]
    } else {
      [0; LAYOUT_HEAD]
    };
    plain.out[..LAYOUT_HEAD].copy_from_slice(&head);
  }
  k
}

fn scan_into(body: &[u8], min_elements: usize, spans: &mut [u32], values: &mut [f64], plain: &mut Plain) -> i64 {
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
        plain.value_starts(stack.last_mut());
        let parent = stack.last().map(|t| (t.role, t.is_array, t.key));
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
              (false, Role::Input, b'[') if parent_key == Key::Shape => Role::Shape,
              _ => Role::Other,
            }
          }
        };
        plain.container_opens(parent, role, c == b'[');
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
          // The plain form's data is one flat array directly under its input.
          if stack.last().is_some_and(|t| t.role == Role::Input) {
            plain.cur.span = Some((nspans / 4) as u32);
          }
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
        if f.state != 0 && f.state != 3 {
          plain.fail();
        }
        match f.role {
          Role::Input => plain.input_ends(),
          Role::Root => plain.root_done = true,
          _ => {}
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
            if top.state == 3 {
              top.state = 4;
            } else {
              plain.fail();
            }
          }
        } else {
          plain.fail();
        }
        i += 1;
      }
      b':' => {
        match stack.last_mut() {
          Some(top) if !top.is_array && top.state == 1 => top.state = 2,
          _ => plain.fail(),
        }
        i += 1;
      }
      b'"' => {
        let Some((end, clean)) = string_end(body, i) else { return GIVE_UP };
        if !clean {
          plain.fail();
        }
        let is_key = match stack.last_mut() {
          Some(top) if !top.is_array && top.expect_key => {
            top.expect_key = false;
            top.key = key_of(&body[i + 1..end - 1]);
            if top.state == 0 || top.state == 4 {
              top.state = 1;
            } else {
              plain.fail();
            }
            // The plain form has only the keys it names, each once (checked as values arrive).
            match (top.role, top.key) {
              (Role::Root, Key::Inputs | Key::Id) | (Role::Input, Key::Name | Key::Datatype | Key::Shape | Key::Data) => {}
              _ => plain.fail(),
            }
            true
          }
          _ => false,
        };
        if !is_key {
          plain.value_starts(stack.last_mut());
          match stack.last() {
            Some(top) if !top.is_array => plain.string_value(top, i + 1, end - 1),
            _ => plain.fail(),
          }
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
        plain.value_starts(stack.last_mut());
        let Some(top) = stack.last_mut().filter(|t| t.is_array) else {
          // A number outside any array: never in the plain form; JSON.parse judges the rest.
          let Some(end) = number_end(body, i) else { return GIVE_UP };
          plain.fail();
          i = end;
          continue;
        };
        if top.state == 1 {
          return GIVE_UP;
        }
        if !(top.role == Role::Data && top.numbers_only) {
          let Some(end) = number_end(body, i) else { return GIVE_UP };
          match top.role {
            Role::Shape => plain.dimension(&body[i..end]),
            Role::Data => {}
            _ => plain.fail(),
          }
          top.state = 1;
          top.count += 1;
          i = end;
          continue;
        }
        // A run of tensor-data numbers (nearly all of a request), each parsed and checked once,
        // without the general dispatch: a number, whitespace, a comma, whitespace, again.
        let mut j = i;
        loop {
          if nvalues >= values.len() {
            return NO_ROOM;
          }
          let Some((v, end)) = json_number(body, j) else { return GIVE_UP };
          values[nvalues] = v;
          nvalues += 1;
          top.count += 1;
          top.state = 1;
          j = skip_whitespace(body, end);
          if j >= n || body[j] != b',' {
            break;
          }
          j = skip_whitespace(body, j + 1);
          if j >= n || !(body[j] == b'-' || body[j].is_ascii_digit()) {
            // The comma is taken; what follows is for the general loop to judge.
            top.state = 2;
            break;
          }
        }
        i = j;
      }
      b't' | b'f' | b'n' => {
        // Literals are never part of the plain form (and are checked by JSON.parse).
        plain.fail();
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

fn skip_whitespace(body: &[u8], mut i: usize) -> usize {
  while i < body.len() && matches!(body[i], b' ' | b'\t' | b'\n' | b'\r') {
    i += 1;
  }
  i
}

/// The JSON number at `start` (its first byte is '-' or a digit): its value, correctly rounded
/// as JSON.parse's, and the offset just past it; None when its syntax is not JSON's (the same
/// judgement as `number_end`).
///
/// fast_float2 parses in one pass (Eisel-Lemire, 8 digits at a time) but accepts more than JSON
/// does; what it accepts beyond JSON is refused here: a sign not followed by a digit ("-inf",
/// "-.5"), a leading zero ("01"), a point with no digit after it ("1.", "1.e5"), and a number
/// running into a letter, digit or point ("1x", "1.5.2", "1e").
fn json_number(body: &[u8], start: usize) -> Option<(f64, usize)> {
  let (v, len) = fast_float2::parse_partial::<f64, _>(&body[start..]).ok()?;
  let end = start + len;
  let mut i = start + usize::from(body[start] == b'-');
  if i >= end || !body[i].is_ascii_digit() {
    return None;
  }
  if body[i] == b'0' {
    i += 1;
  } else {
    while i < end && body[i].is_ascii_digit() {
      i += 1;
    }
  }
  if i < end && body[i] == b'.' && !(i + 1 < end && body[i + 1].is_ascii_digit()) {
    return None;
  }
  if i < end && !matches!(body[i], b'.' | b'e' | b'E') {
    return None;
  }
  if end < body.len() && (body[end].is_ascii_alphanumeric() || body[end] == b'.') {
    return None;
  }
  Some((v, end))
}

/// Offset just past the closing quote of the string opening at `start`, and whether the string
/// is clean (no escape, no control character: its bytes are its text); None if it does not
/// end, or if it contains a `\u0000` escape (reserved for the placeholders).
fn string_end(body: &[u8], start: usize) -> Option<(usize, bool)> {
  let mut i = start + 1;
  let mut clean = true;
  while i < body.len() {
    match body[i] {
      b'"' => return Some((i + 1, clean)),
      b'\\' => {
        if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
          return None;
        }
        clean = false;
        i += 2;
      }
      c => {
        if c < 0x20 {
          clean = false;
        }
        i += 1;
      }
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
    let k = scan(s.as_bytes(), min, &mut spans, &mut values, &mut [0u32; 64]);
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

  fn layout(s: &str, min: usize) -> Vec<u32> {
    let mut spans = vec![0u32; 64];
    let mut values = vec![0f64; 1024];
    let mut out = vec![7u32; LAYOUT_HEAD + 4 * LAYOUT_INPUT];
    scan(s.as_bytes(), min, &mut spans, &mut values, &mut out);
    out
  }

  fn text(s: &str, at: &[u32]) -> String {
    s[at[0] as usize..at[1] as usize].to_string()
  }

  #[test]
  fn plain_requests_get_their_layout() {
    let s = r#" {"id":"r1", "inputs":[{"shape":[2,3],"data":[1,2,3,4,5,6],"name":"x","datatype":"FP32"},{"name":"ü","datatype":"FP64","shape":[1],"data":[7]}] } "#;
    let l = layout(s, 1);
    assert_eq!(&l[..2], &[1, 1]);
    assert_eq!(text(s, &l[2..4]), "r1");
    assert_eq!(l[4], 2);
    let a = &l[LAYOUT_HEAD..LAYOUT_HEAD + LAYOUT_INPUT];
    assert_eq!((text(s, &a[0..2]), text(s, &a[2..4])), ("x".to_string(), "FP32".to_string()));
    assert_eq!(&a[4..8], &[0, 2, 2, 3]);
    let b = &l[LAYOUT_HEAD + LAYOUT_INPUT..LAYOUT_HEAD + 2 * LAYOUT_INPUT];
    assert_eq!((text(s, &b[0..2]), text(s, &b[2..4])), ("ü".to_string(), "FP64".to_string()));
    assert_eq!(&b[4..7], &[1, 1, 1]);
    let no_id = layout(r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[],"data":[1]}]}"#, 1);
    assert_eq!(&no_id[..2], &[1, 0]);
    assert_eq!(no_id[LAYOUT_HEAD + 5], 0);
  }

  #[test]
  fn anything_else_has_no_layout() {
    let ok = r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#;
    assert_eq!(layout(ok, 1)[0], 1);
    for s in [
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}],"outputs":[]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3],"parameters":{}}]}"#,
      r#"{"inputs":[{"name":"x\n","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      "{\"inputs\":[{\"name\":\"x\u{1}\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[1,2,3]}]}",
      r#"{"inputs":[{"name":"x","datatype" "FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x" "datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3],}]}"#,
      r#"{"inputs":[{"name":"x","name":"y","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":["a",2,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[[1,2,3]]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[-1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1.0,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[01,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1e0,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1,1,1,1,1,1,1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"shape":[3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":["1",3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":1,"datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":null,"datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"id":5,"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"id":"a","id":"b","inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}],"inputs":[]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]} {}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]} "x""#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}], "x"}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}, 5]}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]:}"#,
      r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]},]}"#,
      r#"{"inputs":{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}}"#,
      r#"{"in\u0070uts":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}"#,
      r#"[{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}]"#,
    ] {
      let l = layout(s, 1);
      assert_eq!(&l[..LAYOUT_HEAD], &[0; LAYOUT_HEAD], "{s}");
    }
    // Too short to be parsed natively: no span, so no layout either.
    assert_eq!(layout(ok, 8)[0], 0);
  }

  /// xorshift64*: a fixed sequence of test inputs without a dependency.
  fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
  }

  /// `json_number` must judge and value every text exactly as number_end + str::parse do.
  fn same_as_reference(t: &str) {
    for tail in ["", " ", ",", "]", "x", ".", "0", "e"] {
      let text = format!("{t}{tail}");
      let body = text.as_bytes();
      if !(body[0] == b'-' || body[0].is_ascii_digit()) {
        continue;
      }
      let reference = number_end(body, 0).map(|end| (std::str::from_utf8(&body[..end]).unwrap().parse::<f64>().unwrap().to_bits(), end));
      let fused = json_number(body, 0).map(|(v, end)| (v.to_bits(), end));
      assert_eq!(fused, reference, "{text:?}");
    }
  }

  #[test]
  fn json_number_equals_number_end_and_the_standard_parse() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
      let bits = next(&mut state);
      let unit = (bits >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
      for x in [f64::from_bits(bits), unit, unit as f32 as f64, unit * 1e6, unit * 1e-9] {
        if x.is_finite() {
          for t in [format!("{x}"), format!("{x:e}"), format!("{x:.20e}"), format!("{x:.3}"), format!("{x:E}")] {
            same_as_reference(&t);
          }
        }
      }
    }
    for t in [
      "0", "-0", "0.0", "1e22", "1e23", "9007199254740993", "0.1e-22", "123456789012345678901", "1.00000000000000000000001", "5e-324",
      "2.2250738585072014e-308", "1.7976931348623157e308", "1e400", "-1e400", "1e-400", "0e500", "1E+3", "2.5e-3", "-7E-2",
      "01", "-01", "00", "1.", "1.e5", "-", "-.5", "-inf", "-infinity", "-nan", "1e", "1e+", "1e-", "1x", "1.5.2", "--1", "-+1", "1ee2",
      "0x10", "1_000", "1e5.5", "12.", "0.", "-0.", "0e", "0.5e", "9" ,
    ] {
      same_as_reference(t);
    }
  }
}

