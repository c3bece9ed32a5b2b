import Yams

extension Node {
    /// The node's resolved tag name (`str`, `int`, `null`...), resolving a plain scalar's tag on first use.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
