"""GSM-7 / UCS-2 segment counting and plain()."""
from __future__ import annotations

import pytest

from phonetree.sms_encoding import SegmentInfo, is_gsm7, plain, segment_info

# GSM 03.38 basic table, written out independently of the module, row by row (0x00-0x7F);
# "\x1b" marks the escape position, which is not a character.
GSM_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
BASIC = set(GSM_TABLE) - {"\x1b"}
EXTENSION = ["\f", "^", "{", "}", "\\", "[", "~", "]", "|", "€"]

UCS2_CHAR = "ê"  # a plain BMP letter outside GSM-7


def test_the_whole_basic_table_is_one_septet_a_character():
    assert len(GSM_TABLE) == 128 and len(BASIC) == 127  # the table above, as typed: 128 positions
    text = "".join(sorted(BASIC))
    assert segment_info(text) == SegmentInfo("GSM-7", 127, 1, ())
    assert segment_info(text + "a" * 33) == SegmentInfo("GSM-7", 160, 1, ())
    assert segment_info(text + "a" * 34).segments == 2


# --- character set -------------------------------------------------------------------------


def test_every_bmp_char_classified_exactly():
    for cp in range(0x10000):
        ch = chr(cp)
        expected = ch in BASIC or ch in EXTENSION
        assert is_gsm7(ch) is expected, f"U+{cp:04X} {ch!r}"


@pytest.mark.parametrize("ch", list("£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà") + ["\r", "\n"])
def test_named_basic_chars_are_one_septet(ch):
    info = segment_info(ch)
    assert info == SegmentInfo("GSM-7", 1, 1, ())


@pytest.mark.parametrize("ch", ["ç", "á", "í", "ó", "ú", "ê", "`", "\t", "’", "–", "\u00a0"])
def test_non_gsm_chars_force_ucs2(ch):
    assert not is_gsm7(ch)
    assert not is_gsm7("Hello " + ch)
    info = segment_info("Hello " + ch)
    assert info.encoding == "UCS-2"
    assert info.units == 7
    assert info.segments == 1
    assert info.bad_chars == (ch,)


@pytest.mark.parametrize("ch", EXTENSION)
def test_extension_chars_count_two_septets(ch):
    assert is_gsm7(ch)
    assert segment_info(ch) == SegmentInfo("GSM-7", 2, 1, ())
    assert segment_info("ab" + ch).units == 4


def test_empty_text():
    assert segment_info("") == SegmentInfo("GSM-7", 0, 0, ())
    assert is_gsm7("")


# --- GSM-7 boundaries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, segments",
    [(1, 1), (153, 1), (159, 1), (160, 1), (161, 2), (305, 2), (306, 2), (307, 3),
     (459, 3), (460, 4)],
)
def test_gsm7_boundaries(n, segments):
    info = segment_info("a" * n)
    assert info == SegmentInfo("GSM-7", n, segments, ())


def test_80_euros_fit_one_segment_81_do_not():
    assert segment_info("€" * 80) == SegmentInfo("GSM-7", 160, 1, ())
    assert segment_info("€" * 81) == SegmentInfo("GSM-7", 162, 2, ())


def test_extension_char_mixed_at_160():
    assert segment_info("a" * 158 + "{").segments == 1  # 160 septets
    assert segment_info("a" * 159 + "{").segments == 2  # 161 septets


def test_extension_char_at_153_boundary_moves_to_next_segment():
    # 152 + 2 + 152 = 306 septets, but "€" can't straddle septets 153/154: segment 1 holds 152,
    # segment 2 holds "€" + 151, one "a" spills into a third.
    text = "a" * 152 + "€" + "a" * 152
    info = segment_info(text)
    assert info.units == 306
    assert info.segments == 3


def test_extension_char_ending_exactly_at_153_fits():
    # Same 306 septets, but the "€" occupies septets 152-153: exactly two full segments.
    text = "a" * 151 + "€" + "a" * 153
    info = segment_info(text)
    assert info.units == 306
    assert info.segments == 2


def test_all_extension_chars_split_evenly():
    # 153 is odd, so each segment of pure 2-septet chars holds 76 (152 septets).
    assert segment_info("[" * 152).segments == 2  # 304 septets: 76 + 76
    assert segment_info("[" * 153).segments == 3  # 306 septets, but only 76 per segment


# --- UCS-2 boundaries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, segments",
    [(1, 1), (67, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(n, segments):
    info = segment_info(UCS2_CHAR * n)
    assert info == SegmentInfo("UCS-2", n, segments, (UCS2_CHAR,))


def test_one_curly_quote_triples_a_one_segment_text():
    text = "a" * 150 + "’"
    assert segment_info("a" * 151).segments == 1
    info = segment_info(text)
    assert info.encoding == "UCS-2"
    assert info.units == 151
    assert info.segments == 3
    assert info.bad_chars == ("’",)


def test_extension_chars_count_once_in_ucs2():
    info = segment_info("€[" + UCS2_CHAR)
    assert info.encoding == "UCS-2"
    assert info.units == 3
    assert info.bad_chars == (UCS2_CHAR,)


def test_emoji_counts_two_units():
    info = segment_info("😀")
    assert info == SegmentInfo("UCS-2", 2, 1, ("😀",))
    assert segment_info("Hi 😀").units == 5


def test_emoji_boundaries():
    assert segment_info("😀" * 35) == SegmentInfo("UCS-2", 70, 1, ("😀",))
    assert segment_info("😀" * 36) == SegmentInfo("UCS-2", 72, 2, ("😀",))
    assert segment_info("a" + "😀" * 35).segments == 2  # 71 units


def test_bad_chars_distinct_in_order_of_first_appearance():
    info = segment_info("It’s “fine” – really’ 😀 ç😀")
    assert info.bad_chars == ("’", "“", "”", "–", "😀", "ç")


def test_gsm7_with_extension_has_no_bad_chars():
    info = segment_info("Cost: €5 [approx] ~ {ok}")
    assert info.encoding == "GSM-7"
    assert info.bad_chars == ()


# --- plain() -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "src, dst",
    [
        ("\u2018", "'"),  # ‘
        ("\u2019", "'"),  # ’
        ("\u201a", "'"),  # ‚
        ("\u201b", "'"),  # ‛
        ("\u201c", '"'),  # “
        ("\u201d", '"'),  # ”
        ("\u201e", '"'),  # „
        ("\u201f", '"'),  # ‟
        ("\u2010", "-"),  # hyphen
        ("\u2011", "-"),  # non-breaking hyphen
        ("\u2012", "-"),  # figure dash
        ("\u2013", "-"),  # en dash
        ("\u2014", "-"),  # em dash
        ("\u2015", "-"),  # horizontal bar
        ("\u2212", "-"),  # minus sign
        ("\u2026", "..."),  # ellipsis
        ("\u2022", "-"),  # bullet
        ("\u00a0", " "),  # no-break space
        ("\u1680", " "),  # ogham space mark
        ("\u2000", " "),  # en quad
        ("\u2002", " "),  # en space
        ("\u2003", " "),  # em space
        ("\u2007", " "),  # figure space
        ("\u2009", " "),  # thin space
        ("\u200a", " "),  # hair space
        ("\u202f", " "),  # narrow no-break space
        ("\u205f", " "),  # medium mathematical space
        ("\u3000", " "),  # ideographic space
        ("\u200b", ""),  # zero-width space
        ("\u200c", ""),  # zero-width non-joiner
        ("\u200d", ""),  # zero-width joiner
        ("\u2060", ""),  # word joiner
        ("\ufeff", ""),  # BOM / zero-width no-break space
        ("\u00ad", ""),  # soft hyphen
    ],
)
def test_plain_replaces(src, dst):
    assert not is_gsm7(src)
    out = plain("a" + src + "b")
    assert out == "a" + dst + "b"
    assert is_gsm7(out)


def test_all_unicode_spaces_in_range_replaced():
    for cp in range(0x2000, 0x200B):
        assert plain(chr(cp)) == " ", f"U+{cp:04X}"


def test_plain_typical_sentence_becomes_one_gsm_segment():
    text = (
        "\u201cHi Sam\u201d \u2013 it\u2019s Jo\u2026 we\u2019re meeting at 7\u00a0pm\u200b "
        "\u2022 bring \u2018the\u2019 notes \u2014 5\u2009\u2212\u20092 = 3"
    )
    before = segment_info(text)
    assert before.encoding == "UCS-2"
    out = plain(text)
    assert out == (
        "\"Hi Sam\" - it's Jo... we're meeting at 7 pm - bring 'the' notes - 5 - 2 = 3"
    )
    assert is_gsm7(out)
    after = segment_info(out)
    assert after.encoding == "GSM-7"
    assert after.segments == 1
    assert after.bad_chars == ()


def test_plain_cuts_segments_of_long_text():
    text = "We\u2019ll ring you later today, don\u2019t worry. " * 4  # 164 chars
    assert segment_info(text).segments == 3
    assert segment_info(plain(text)).segments == 2


def test_plain_leaves_other_characters_alone():
    text = "Café £5 é ç á ê € [x] ~ 😀 Ω `tick` \t tab\r\n"
    assert plain(text) == text


def test_plain_keeps_emoji_and_its_cost():
    out = plain("Thanks \u2014 see you \U0001F60A")
    assert out == "Thanks - see you \U0001F60A"
    info = segment_info(out)
    assert info.encoding == "UCS-2"
    assert info.bad_chars == ("\U0001F60A",)


def test_plain_keeps_zwj_inside_emoji_sequence():
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # 👨‍👩‍👧
    health_worker = "\U0001F469\u200d\u2695\ufe0f"  # 👩‍⚕️
    assert plain(family) == family
    assert plain("Hi " + health_worker + "!") == "Hi " + health_worker + "!"
    # ...but a joiner next to ordinary letters or spaces still goes.
    assert plain("a\u200d\U0001F600") == "a\U0001F600"
    assert plain("\U0001F600\u200d ") == "\U0001F600 "


def test_plain_is_idempotent_and_identity_on_gsm7():
    text = "Hi Sam, it's Jo - reply OK or CALL. {€5} ~ ^ | \\ [1]"
    assert plain(text) == text
    messy = "It\u2019s\u00a0\u201cok\u201d\u2026"
    assert plain(plain(messy)) == plain(messy)


def test_plain_empty():
    assert plain("") == ""
