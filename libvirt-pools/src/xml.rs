//! A small element tree over quick-xml: enough for libvirt's pool, volume and disk documents.
//!
//! libvirt documents are small and attribute-heavy; a tree keeps the typed mapping in
//! `pool.rs`/`volume.rs` readable and lets unknown elements (capacity, allocation, …) be skipped.

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use crate::error::{Error, XmlProblem};

/// One XML element with its attributes, child elements and concatenated text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

impl Element {
    pub(crate) fn new(name: &str) -> Self {
        Element {
            name: name.to_owned(),
            ..Element::default()
        }
    }

    /// Builder: adds an attribute.
    pub(crate) fn attr(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attrs.push((key.to_owned(), value.into()));
        self
    }

    /// Builder: adds an attribute when the value is present.
    pub(crate) fn attr_opt(self, key: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.attr(key, v),
            None => self,
        }
    }

    /// Builder: adds a child element.
    pub(crate) fn child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// Builder: adds a child element when present.
    pub(crate) fn child_opt(self, child: Option<Element>) -> Self {
        match child {
            Some(c) => self.child(c),
            None => self,
        }
    }

    /// Builder: sets the text content.
    pub(crate) fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// A text-only element `<name>text</name>`.
    pub(crate) fn leaf(name: &str, text: impl Into<String>) -> Self {
        Element::new(name).text(text)
    }

    pub(crate) fn get_attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn find_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the named child, if the child exists.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.find(name).map(|c| c.text.as_str())
    }

    /// Attribute of the named child, if both exist.
    pub(crate) fn child_attr(&self, child: &str, key: &str) -> Option<&str> {
        self.find(child).and_then(|c| c.get_attr(key))
    }

    /// Renders the tree with two-space indentation.
    pub(crate) fn render(&self) -> String {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        write_element(&mut writer, self);
        // The writer only ever emits what we gave it, and everything we give it is a `str`.
        String::from_utf8(writer.into_inner()).unwrap_or_default()
    }

    /// Parses a document and returns its root element.
    pub(crate) fn parse(document: &'static str, xml: &str) -> Result<Element, Error> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Element> = Vec::new();
        let xml_err = |source: quick_xml::Error| Error::XmlSyntax { document, source };
        loop {
            match reader.read_event().map_err(xml_err)? {
                Event::Start(start) => stack.push(element_from_start(document, &start)?),
                Event::Empty(start) => {
                    let el = element_from_start(document, &start)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                }
                Event::End(_) => {
                    // quick-xml checks that end names match their start by default.
                    let done = stack.pop().ok_or(Error::XmlShape {
                        document,
                        element: String::new(),
                        problem: XmlProblem::UnbalancedEnd,
                    })?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Text(text) => {
                    let text = text.unescape().map_err(xml_err)?;
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&text);
                    }
                }
                Event::CData(data) => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Event::Eof => {
                    return Err(Error::XmlShape {
                        document,
                        element: stack.last().map(|e| e.name.clone()).unwrap_or_default(),
                        problem: XmlProblem::NoRootElement,
                    })
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }
}

fn element_from_start(document: &'static str, start: &BytesStart<'_>) -> Result<Element, Error> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| Error::XmlSyntax {
            document,
            source: e.into(),
        })?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|source| Error::XmlSyntax { document, source })?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

fn write_element(writer: &mut Writer<Vec<u8>>, el: &Element) {
    let start = BytesStart::new(el.name.as_str())
        .with_attributes(el.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Writing into a Vec cannot fail.
    if el.children.is_empty() && el.text.is_empty() {
        let _ = writer.write_event(Event::Empty(start));
        return;
    }
    let _ = writer.write_event(Event::Start(start));
    if !el.text.is_empty() {
        let _ = writer.write_event(Event::Text(BytesText::new(&el.text)));
    }
    for child in &el.children {
        write_element(writer, child);
    }
    let _ = writer.write_event(Event::End(BytesEnd::new(el.name.as_str())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_nested_elements_with_escaping() {
        let el = Element::new("pool")
            .attr("type", "dir")
            .child(Element::leaf("name", "a<b&c"))
            .child(Element::new("target").child(Element::leaf("path", "/x")));
        let xml = el.render();
        assert_eq!(
            xml,
            "<pool type=\"dir\">\n  <name>a&lt;b&amp;c</name>\n  <target>\n    <path>/x</path>\n  </target>\n</pool>"
        );
        assert_eq!(Element::parse("pool", &xml).unwrap(), el);
    }

    #[test]
    fn parse_rejects_truncated_documents() {
        let err = Element::parse("pool", "<pool><name>x</name>").unwrap_err();
        assert!(
            matches!(
                err,
                Error::XmlShape {
                    problem: XmlProblem::NoRootElement,
                    ..
                } | Error::XmlSyntax { .. }
            ),
            "{err:?}"
        );
    }
}
