/// A FIFO queue that releases what it handed out as it goes: the answered prefix is dropped
/// once it is at least half of the storage, so memory stays proportional to what waits even
/// when the queue never drains (an array that is only emptied when drained keeps every
/// request, and the closures and callers it holds, alive under sustained load).
package struct WriteQueue<Element> {
    private var storage: [Element] = []
    private var head = 0

    package init() {}

    /// Elements waiting.
    package var count: Int { storage.count - head }
    package var isEmpty: Bool { head == storage.count }
    /// Elements held, waiting or already handed out: at most twice `count`, plus a small slack.
    package var storageCount: Int { storage.count }

    package mutating func append(_ element: Element) { storage.append(element) }

    /// Up to `limit` elements from the front.
    package mutating func removeFirst(upTo limit: Int) -> [Element] {
        let end = Swift.min(storage.count, head + limit)
        let taken = Array(storage[head..<end])
        head = end
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= Self.compactionSlack && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return taken
    }

    /// Handed-out elements kept before compacting, so that short queues are not shifted on
    /// every batch.
    static var compactionSlack: Int { 32 }
}
