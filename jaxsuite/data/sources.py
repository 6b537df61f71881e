"""Every data source `jaxsuite data fetch|check` knows, with canonical URLs and sha256 digests."""
from __future__ import annotations

from jaxsuite.core.errors import UserError
from jaxsuite.data.cache import RemoteFile, Source
from jaxsuite.data.or_bench import OR_BENCH
from jaxsuite.data.planetoid import PLANETOID

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")


def _mnist(name: str, sha: str) -> RemoteFile:
    return RemoteFile(name, sha, tuple(m + name for m in _MNIST_MIRRORS))


MNIST = Source("mnist", "MNIST IDX files (LeCun et al.); multi_mnist composes its test split", (
    _mnist("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    _mnist("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    _mnist("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    _mnist("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
))

NYUV2 = Source("nyuv2", "NYUv2 labelled frames (795/654 split), 40-class labels and surface normals", (), manual=(
    "NYUv2 is not fetched automatically (2.8 GB .mat plus Ladicky et al.'s normals): extract it with "
    "VainF/nyuv2-python-toolkit into $JAXSUITE_DATA/nyuv2/{image,seg40,normal}/{train,test}/*.png "
    "and copy splits.mat beside them"))

SOURCES: dict[str, Source] = {s.name: s for s in (MNIST, NYUV2, OR_BENCH, PLANETOID)}


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise UserError(f"unknown data source {name!r} (known: {', '.join(SOURCES)})")
    return SOURCES[name]
