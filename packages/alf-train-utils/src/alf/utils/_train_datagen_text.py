"""WikiText reading for :mod:`alf.utils.datagen`: tokenizer, vocabulary, batching.

This reproduces the pipeline ALF ran through torchtext (``basic_english``
tokenizer, a vocabulary ordered by frequency with ``<unk>`` first, token ids of
every non-empty line concatenated, then laid out as columns), without torchtext.
"""

import array
import collections
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import torch

__all__ = [
    "Vocab",
    "basic_english_tokenize",
    "batchify",
    "build_vocab",
    "numericalize",
    "iter_token_lines",
]

# torchtext's "basic_english" normalisation is: lower-case, then these regex
# substitutions in order, then split on whitespace:
#   '  -> " '  "     "  -> ""      .  -> " . "    <br />  -> " "
#   ,  -> " , "      (  -> " ( "   )  -> " ) "    !  -> " ! "    ?  -> " ? "
#   ;  -> " "        :  -> " "     \s+ -> " "
# The single-character substitutions before and after "<br />" commute among
# themselves, so two str.translate passes around one str.replace give the same
# tokens (the final \s+ substitution is subsumed by str.split).
_BEFORE_BR = str.maketrans({"'": " '  ", '"': "", ".": " . "})
_AFTER_BR = str.maketrans(
    {",": " , ", "(": " ( ", ")": " ) ", "!": " ! ", "?": " ? ", ";": " ", ":": " "}
)

UNK = "<unk>"


def basic_english_tokenize(line: str) -> List[str]:
    """Split ``line`` into tokens as torchtext's ``basic_english`` tokenizer does.

    The line is lower-cased; ``.``, ``,``, ``(``, ``)``, ``!``, ``?`` become
    separate tokens, ``'`` is split off, ``"`` is dropped, ``;``, ``:`` and
    ``<br />`` become spaces; the result is split on whitespace.
    """
    line = line.lower().translate(_BEFORE_BR)
    if "<br />" in line:
        line = line.replace("<br />", " ")
    return line.translate(_AFTER_BR).split()


class Vocab:
    """A token <-> index table with a default index for unknown tokens.

    The subset of ``torchtext.vocab.Vocab`` that ALF's WikiText users call:
    ``vocab[token]``, ``vocab(tokens)``, ``len(vocab)``, ``token in vocab``,
    ``get_itos``/``get_stoi``, ``lookup_token(s)``/``lookup_indices`` and
    ``get/set_default_index``.

    Args:
        itos: the tokens in index order (no duplicates).
        default_index: the index returned for tokens not in the table, or None to
            raise ``KeyError`` for them.
    """

    def __init__(self, itos: Sequence[str], default_index: Optional[int] = None):
        itos = list(itos)
        stoi: Dict[str, int] = {}
        for i, token in enumerate(itos):
            if not isinstance(token, str):
                raise TypeError(f"itos[{i}] must be a str, got {type(token).__name__}")
            if token in stoi:
                raise ValueError(f"itos holds {token!r} twice (indices {stoi[token]} and {i})")
            stoi[token] = i
        self._itos = itos
        self._stoi = stoi
        self._default_index: Optional[int] = None
        if default_index is not None:
            self.set_default_index(default_index)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __getitem__(self, token: str) -> int:
        index = self._stoi.get(token)
        if index is not None:
            return index
        if self._default_index is None:
            raise KeyError(f"token {token!r} is not in the vocabulary and no default index is set")
        return self._default_index

    def __call__(self, tokens: Iterable[str]) -> List[int]:
        return self.lookup_indices(tokens)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, default_index={self._default_index})"

    def lookup_indices(self, tokens: Iterable[str]) -> List[int]:
        """Return the index of each token (the default index for unknown ones)."""
        return [self[t] for t in tokens]

    def lookup_token(self, index: int) -> str:
        """Return the token at ``index``; ``IndexError`` outside ``[0, len)``."""
        if not 0 <= index < len(self._itos):
            raise IndexError(f"index must be in [0, {len(self._itos)}), got {index}")
        return self._itos[index]

    def lookup_tokens(self, indices: Iterable[int]) -> List[str]:
        """Return the token of each index."""
        return [self.lookup_token(int(i)) for i in indices]

    def get_itos(self) -> List[str]:
        """Return the tokens in index order (a copy)."""
        return list(self._itos)

    def get_stoi(self) -> Dict[str, int]:
        """Return the token -> index mapping (a copy)."""
        return dict(self._stoi)

    def get_default_index(self) -> Optional[int]:
        """Return the index used for unknown tokens (None: they raise ``KeyError``)."""
        return self._default_index

    def set_default_index(self, index: Optional[int]) -> None:
        """Set the index used for unknown tokens (None: they raise ``KeyError``)."""
        if index is not None and not (isinstance(index, int) and 0 <= index < len(self._itos)):
            raise ValueError(
                f"index must be None or an int in [0, {len(self._itos)}), got {index!r}"
            )
        self._default_index = index


def build_vocab(token_lines: Iterable[List[str]], max_size: Optional[int] = None) -> Vocab:
    """Build the vocabulary of ``token_lines``: ``<unk>`` at 0, then the tokens by
    decreasing count, ties in alphabetical order (torchtext's order), at most
    ``max_size`` entries in all (``<unk>`` included); unknown tokens map to 0."""
    counts: collections.Counter = collections.Counter()
    for tokens in token_lines:
        counts.update(tokens)
    counts.pop(UNK, None)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_size is not None:
        ordered = ordered[: max_size - 1]
    return Vocab([UNK] + [token for token, _ in ordered], default_index=0)


def iter_token_lines(path: Path) -> Iterator[List[str]]:
    """Yield the tokens of each line of a ``wiki.*.tokens`` file (UTF-8), one line
    at a time (WikiText-103's 100M tokens are never held as strings at once).

    Raises:
        ValueError: naming ``path`` if it is not UTF-8 text (e.g. a cut multi-byte
            character at the end of a truncated file).
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for line in f:
                yield basic_english_tokenize(line)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc


def numericalize(token_lines: Iterable[List[str]], vocab: Vocab) -> torch.Tensor:
    """Concatenate the ids of every line's tokens into one int64 tensor [N]."""
    ids = array.array("q")
    lookup = vocab.lookup_indices
    for tokens in token_lines:
        ids.extend(lookup(tokens))
    if not ids:
        return torch.zeros(0, dtype=torch.int64)
    return torch.frombuffer(ids, dtype=torch.int64).clone()


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Lay the stream ``data`` [N] out as ``batch_size`` columns: [N // batch_size,
    batch_size], column j holding the j-th consecutive chunk (the remainder is
    dropped)."""
    rows = data.shape[0] // batch_size
    return data[: rows * batch_size].reshape(batch_size, rows).t().contiguous()
