"""The wire protocol: commands encoded, replies parsed whole however the bytes arrive."""

from __future__ import annotations

from router.traffic.shared._resp import Parser, ReplyError, encode

REPLIES = (
    b"+OK\r\n-ERR no\r\n:42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*3\r\n:1\r\n$0\r\n\r\n*1\r\n+x\r\n*-1\r\n"
)


def test_encode() -> None:
    assert encode("GET", b"k", 3, 0.5) == b"*4\r\n$3\r\nGET\r\n$1\r\nk\r\n$1\r\n3\r\n$3\r\n0.5\r\n"


def test_replies_split_at_every_offset_come_out_whole() -> None:
    whole = Parser().feed(REPLIES)
    assert whole[0] == b"OK"
    assert isinstance(whole[1], ReplyError)
    assert str(whole[1]) == "ERR no"
    assert whole[2:] == [42, b"he\r\nl", None, [1, b"", [b"x"]], None]
    for cut in range(len(REPLIES) + 1):
        parser = Parser()
        got = parser.feed(REPLIES[:cut]) + parser.feed(REPLIES[cut:])
        assert [type(r) for r in got] == [type(r) for r in whole]
        assert [r for r in got if not isinstance(r, ReplyError)] == [
            r for r in whole if not isinstance(r, ReplyError)
        ]


def test_text_and_bytes_encode_alike() -> None:
    # ASCII text is built as one string; bytes and other text take the byte-wise way.
    assert encode("EVALSHA", "ab", 2, "k:1", 0.25) == encode(b"EVALSHA", "ab", 2, b"k:1", 0.25)
    assert encode("SET", "clé", "v") == b"*3\r\n$3\r\nSET\r\n$4\r\ncl\xc3\xa9\r\n$1\r\nv\r\n"
