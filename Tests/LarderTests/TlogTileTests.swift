import Larder
import LarderTesting
import Testing

/// C2SP tlog-tiles arithmetic, paths and entry bundles.
@Suite("tlog tiles")
struct TlogTileTests {
    @Test func pathsAreEncodedAsTheSpecificationShows() {
        #expect(TlogTile.encode(index: 0) == "000")
        #expect(TlogTile.encode(index: 5) == "005")
        #expect(TlogTile.encode(index: 999) == "999")
        #expect(TlogTile.encode(index: 1000) == "x001/000")
        #expect(TlogTile.encode(index: 1_234_067) == "x001/x234/067")
        #expect(TlogTile.encode(index: .max) == "x018/x446/x744/x073/x709/x551/615")
        #expect(TlogTile(level: 0, index: 1_234_067).path == "tile/0/x001/x234/067")
        #expect(TlogTile(level: 2, index: 5, width: 17).path == "tile/2/005.p/17")
        #expect(TlogTile(level: 0, index: 1_234_067, width: 12).entriesPath == "tile/entries/x001/x234/067.p/12")
    }

    @Test func pathsParseStrictly() {
        for tile in [TlogTile(level: 0, index: 0), TlogTile(level: 63, index: .max), TlogTile(level: 1, index: 1000, width: 1),
                     TlogTile(level: 3, index: 1_234_067, width: 255)] {
            #expect(TlogTile.parse(tile.path) == .hashes(tile))
            if tile.level == 0 { #expect(TlogTile.parse(tile.entriesPath) == .entries(tile)) }
        }
        #expect(TlogTile.parse("tile/entries/x001/067.p/5") == .entries(TlogTile(level: 0, index: 1067, width: 5)))
        for bad in ["tile/0/5", "tile/0/0005", "tile/00/005", "tile/64/005", "tile/0/x000/005", "tile/0/001/005",
                    "tile/0/x001", "tile/0/005.p/0", "tile/0/005.p/256", "tile/0/005.p/05", "tile/0/005.p/", "tile/0/005.p",
                    "tile/0/x018/x446/x744/x073/x709/x551/616", "tiles/0/005", "tile/0", "tile//005", "tile/0/00a",
                    "tile/entries/x001", "tile/-1/005", "tile/0/005/", "/tile/0/005", "tile/0.p/5", "tile/0/+05"] {
            #expect(TlogTile.parse(bad) == nil, "\(bad) was accepted")
        }
    }

    /// The specification's example: a tree of 70,000 leaves is 273 full level-0 tiles, a partial
    /// level-0 tile of width 112, one full level-1 tile, a partial level-1 tile of width 17 and a
    /// partial level-2 tile of width 1; a tree of 256 leaves is one full level-0 tile and a
    /// partial level-1 tile of width 1.
    @Test func tilesOfATreeSize() {
        let tiles = TlogTile.tiles(treeSize: 70_000)
        #expect(tiles.filter { $0.level == 0 && !$0.isPartial }.count == 273)
        #expect(tiles.filter { $0.level == 0 && $0.isPartial } == [TlogTile(level: 0, index: 273, width: 112)])
        #expect(tiles.filter { $0.level == 1 } == [TlogTile(level: 1, index: 0), TlogTile(level: 1, index: 1, width: 17)])
        #expect(tiles.filter { $0.level == 2 } == [TlogTile(level: 2, index: 0, width: 1)])
        #expect(tiles.count == 273 + 1 + 2 + 1)
        #expect(TlogTile.tiles(treeSize: 256) == [TlogTile(level: 0, index: 0), TlogTile(level: 1, index: 0, width: 1)])
        #expect(TlogTile.tiles(treeSize: 0).isEmpty)
        #expect(TlogTile.tile(level: 0, index: 274, treeSize: 70_000) == nil)
        #expect(TlogTile.tile(level: 3, index: 0, treeSize: 70_000) == nil)
        #expect(TlogTile.hashCount(level: 8, treeSize: .max) == 0)
        #expect(TlogTile.hashCount(level: 7, treeSize: .max) == 255)
        let expected: Range<UInt64> = (2 * 65_536)..<(2 * 65_536 + 3 * 256)
        #expect(TlogTile(level: 1, index: 2, width: 3).leafRange == expected)
        #expect(TlogTile(level: 7, index: 1).leafRange == nil)
    }

    /// Tile bytes are the stored hashes: level-1 tile hashes are the roots of 256-leaf subtrees,
    /// and a tile reaching past the tree is not found.
    @Test func tileDataComesFromTheStoredLevels() throws {
        let (tree, reference) = try buildTree(size: 70_000)
        let reader = tree.reader
        let level0 = try reader.tileData(TlogTile(level: 0, index: 273, width: 112))
        #expect(level0 == reference.leaves[(273 * 256)..<(273 * 256 + 112)].flatMap { $0 })
        let level1 = try reader.tileData(TlogTile(level: 1, index: 1, width: 17))
        #expect(level1.count == 17 * 32)
        #expect(Array(level1[(16 * 32)...]) == reference.mth((272 * 256)..<(273 * 256)))
        let level2 = try reader.tileData(TlogTile(level: 2, index: 0, width: 1))
        #expect(level2 == reference.mth(0..<65_536))
        expectError(.notFound) { try reader.tileData(TlogTile(level: 0, index: 273, width: 113)) }
        expectError(.notFound) { try reader.tileData(TlogTile(level: 1, index: 1)) }
        expectError(.notFound) { try reader.tileData(TlogTile(level: 3, index: 0, width: 1)) }
        expectError(.notFound) { try reader.tileData(TlogTile(level: 0, index: .max)) }
    }

    @Test func entryBundlesRoundTripAndRefuseOversizedEntries() throws {
        let entries: [[UInt8]] = [[], [1], Array(repeating: 7, count: 300), Array(repeating: 9, count: TlogEntryBundle.entryBytesMax)]
        let bundle = try TlogEntryBundle.encode(entries)
        #expect(Array(bundle[0..<5]) == [0, 0, 0, 1, 1])
        #expect(Array(bundle[5..<7]) == [0x01, 0x2C])
        #expect(try TlogEntryBundle.decode(bundle) == entries)
        expectError(.validationFailed) {
            try TlogEntryBundle.encode([Array(repeating: 0, count: TlogEntryBundle.entryBytesMax + 1)])
        }
        expectError(.validationFailed) { try TlogEntryBundle.encode([]) }
        expectError(.validationFailed) { try TlogEntryBundle.decode(Array(bundle.dropLast())) }
        expectError(.validationFailed) { try TlogEntryBundle.decode([0]) }
        expectError(.validationFailed) {
            try TlogEntryBundle.decode(Array(repeating: 0, count: 2 * (TlogTile.width + 1)))
        }
    }
}
