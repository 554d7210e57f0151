"""Adversarial corpus: every case must be rejected (at least one ``error``) without --strict.

Each case is ``(id, source, expected rules)``: the scan must report an error whose rule is one of
the expected ones (``None`` = any error will do). The cases are grouped by the technique they
use to hide the dangerous operation from a spelling-based check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.plugins.policy import ScanPolicy
from mixpeek_orchestration.plugins.scanner import RULES, scan_directory, scan_source

Case = tuple[str, str | bytes, frozenset[str] | None]


def _case(case_id: str, source: str | bytes, *rules: str) -> Case:
    return (case_id, source, frozenset(rules) if rules else None)


ATTACKS: list[Case] = [
    # --- forbidden imports, the seed list -------------------------------------------------
    _case("import-subprocess", "import subprocess\nsubprocess.run(['id'])\n", "forbidden-import"),
    _case("from-subprocess-as", "from subprocess import Popen as P\nP('id')\n", "forbidden-import"),
    _case(
        "import-ctypes",
        "import ctypes\nctypes.CDLL('libc.so.6').system(b'id')\n",
        "forbidden-import",
    ),
    _case("import-pty", "import pty\npty.spawn('/bin/sh')\n", "forbidden-import"),
    _case("import-multiprocessing", "import multiprocessing\n", "forbidden-import"),
    _case(
        "import-threading",
        "import threading\nthreading.Thread(target=print).start()\n",
        "forbidden-import",
    ),
    _case(
        "import-socket",
        "import socket\nsocket.socket().connect(('1.2.3.4', 80))\n",
        "forbidden-import",
    ),
    _case("import-shutil", "import shutil\nshutil.rmtree('/')\n", "forbidden-import"),
    _case("import-signal", "import signal\nsignal.alarm(1)\n", "forbidden-import"),
    _case("import-sys", "import sys\nsys.modules['os'].system('id')\n", "forbidden-import"),
    _case("import-builtins", "import builtins\nbuiltins.eval('1')\n", "forbidden-import"),
    _case(
        "import-importlib", "import importlib\nimportlib.import_module('os')\n", "forbidden-import"
    ),
    _case("import-frozen-importlib", "import importlib._bootstrap\n", "forbidden-import"),
    _case(
        "import-inspect",
        "import inspect\ninspect.currentframe().f_back\n",
        "forbidden-import",
        "dangerous-attribute",
    ),
    _case("import-gc", "import gc\ngc.get_objects()\n", "forbidden-import"),
    _case("import-code", "import code\ncode.interact()\n", "forbidden-import"),
    _case("import-runpy", "import runpy\nrunpy.run_path('x.py')\n", "forbidden-import"),
    _case("import-types-codetype", "import types\ntypes.FunctionType(c, {})\n", "forbidden-import"),
    _case(
        "import-operator", "import operator\noperator.attrgetter('system')\n", "forbidden-import"
    ),
    _case(
        "import-asyncio-subprocess",
        "import asyncio\nasyncio.create_subprocess_shell('id')\n",
        "forbidden-call",
    ),
    _case(
        "asyncio-subprocess-module",
        "from asyncio import subprocess as sp\nsp.create_subprocess_exec('id')\n",
        "forbidden-call",
    ),
    _case(
        "asyncio-server",
        "import asyncio\nasyncio.start_server(print, '0.0.0.0', 80)\n",
        "forbidden-call",
    ),
    _case("io-open", "import io\nio.open('/etc/passwd').read()\n", "forbidden-call"),
    _case("io-fileio", "from io import FileIO\nFileIO('/etc/passwd')\n", "forbidden-call"),
    # --- code generation and evaluation inside allowed libraries ---------------------------
    _case("torch-compile", "import torch\ntorch.compile(lambda x: x)\n", "eval-like"),
    _case(
        "torch-dynamo-config",
        "import torch\ntorch._dynamo.config.cache_size_limit = 1\n",
        "eval-like",
        "module-mutation",
    ),
    _case("torch-jit-script", "import torch\ntorch.jit.script(lambda x: x)\n", "eval-like"),
    _case("torch-fx", "import torch.fx as fx\nfx.symbolic_trace(print)\n", "eval-like"),
    _case(
        "runtime-annotations-get-type-hints",
        "import typing\nclass C:\n    pass\ntyping.get_type_hints(C, {'x': 1})\n",
        "eval-like",
    ),
    _case(
        "pydantic-create-model-string-type",
        "import pydantic\npydantic.create_model('M', x=('__import__(\"os\").system(\"id\")', 1))\n",
        "eval-like",
    ),
    _case("pandas-styler-template", "from pandas.io.formats.style import Styler\n", "eval-like"),
    _case("import-not-allowed", "import scipy\n", "import-not-allowed"),
    # --- C-level twins of denied modules ---------------------------------------------------
    _case("c-twin-posix", "import posix\nposix.system('id')\n", "forbidden-import"),
    _case("c-twin-nt", "import nt\n", "forbidden-import"),
    _case("c-twin-posixsubprocess", "import _posixsubprocess\n", "forbidden-import"),
    _case("c-twin-socket", "import _socket\n", "forbidden-import"),
    _case("c-twin-thread", "from _thread import start_new_thread\n", "forbidden-import"),
    _case("c-twin-io", "import _io\n_io.open('/etc/passwd')\n", "forbidden-import"),
    _case("c-twin-imp", "import _imp\n", "forbidden-import"),
    _case("c-twin-frozen", "import _frozen_importlib\n", "forbidden-import"),
    # --- pickle by other names ------------------------------------------------------------
    _case("pickle", "import pickle\npickle.loads(b'')\n", "forbidden-import"),
    _case("c-pickle", "import _pickle\n", "forbidden-import"),
    _case("cpickle-py2", "import cPickle\n", "forbidden-import"),
    _case("dill", "import dill\ndill.loads(b'')\n", "forbidden-import"),
    _case("cloudpickle", "import cloudpickle\n", "forbidden-import"),
    _case("joblib", "import joblib\njoblib.load('m.pkl')\n", "forbidden-import"),
    _case("shelve", "import shelve\nshelve.open('db')\n", "forbidden-import"),
    _case("marshal", "import marshal\nmarshal.loads(b'')\n", "forbidden-import"),
    _case("copyreg", "import copyreg\n", "forbidden-import"),
    _case(
        "pandas-read-pickle",
        "import pandas as pd\npd.read_pickle('x.pkl')\n",
        "unsafe-deserialization",
    ),
    _case(
        "pandas-io-pickle",
        "import pandas as pd\npd.io.pickle.read_pickle('x')\n",
        "dangerous-attribute",
        "unsafe-deserialization",
    ),
    _case(
        "pandas-read-hdf",
        "from pandas import read_hdf\nread_hdf('x.h5')\n",
        "unsafe-deserialization",
    ),
    _case(
        "numpy-allow-pickle",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)\n",
        "unsafe-deserialization",
    ),
    _case(
        "allow-pickle-kwargs-dict",
        "import numpy as np\nkw = {'allow_pickle': True}\nnp.load('x.npy', **kw)\n",
        "unsafe-deserialization",
    ),
    _case(
        "allow-pickle-computed",
        "import numpy as np\ndef f(p, flag):\n    return np.load(p, allow_pickle=flag)\n",
        "unsafe-deserialization",
    ),
    _case("torch-load-default", "import torch\ntorch.load('model.pt')\n", "unsafe-deserialization"),
    _case(
        "torch-load-weights-only-false",
        "import torch\ntorch.load('m.pt', weights_only=False)\n",
        "unsafe-deserialization",
    ),
    _case(
        "torch-load-aliased",
        "import torch\nload = torch.load\nload('m.pt', weights_only=True)\n",
        "unsafe-deserialization",
    ),
    _case(
        "torch-load-from-import", "from torch import load\nload('m.pt')\n", "unsafe-deserialization"
    ),
    _case(
        "torch-serialization-load",
        "import torch\ntorch.serialization.load('m.pt')\n",
        "unsafe-deserialization",
    ),
    _case(
        "torch-pickle-module",
        "import torch\ntorch.load('m.pt', weights_only=True, pickle_module=evil)\n",
        "unsafe-deserialization",
    ),
    # --- remote code ------------------------------------------------------------------------
    _case(
        "trust-remote-code",
        "from transformers import AutoModel\nAutoModel.from_pretrained('x/y', trust_remote_code=True)\n",
        "remote-code",
    ),
    _case(
        "trust-remote-code-truthy",
        "from sentence_transformers import SentenceTransformer\nSentenceTransformer('x', trust_remote_code=1)\n",
        "remote-code",
    ),
    _case(
        "trust-remote-code-subscript",
        "from transformers import AutoModel\nopts = {}\nopts['trust_remote_code'] = True\nAutoModel.from_pretrained('x', **opts)\n",
        "remote-code",
    ),
    _case(
        "trust-remote-code-setdefault",
        "def f(kw):\n    kw.setdefault('trust_remote_code', True)\n",
        "remote-code",
    ),
    _case(
        "trust-remote-code-built",
        "from transformers import AutoModel\nAutoModel.from_pretrained('x', **{'trust_' + 'remote_code': True})\n",
        "string-built-name",
    ),
    _case(
        "trust-remote-code-fullwidth-kw",
        "from transformers import AutoModel\nAutoModel.from_pretrained('x', trust_remote_\uff43ode=True)\n",
        "remote-code",
    ),
    _case("torch-hub-load", "import torch\ntorch.hub.load('evil/repo', 'model')\n", "remote-code"),
    _case("torch-hub-from-import", "from torch.hub import load\n", "remote-code"),
    _case("torch-model-zoo", "from torch.utils import model_zoo\n", "remote-code"),
    _case(
        "transformers-dynamic-modules",
        "from transformers.dynamic_module_utils import get_class_from_dynamic_module\n",
        "remote-code",
    ),
    # --- native code ------------------------------------------------------------------------
    _case(
        "numpy-ctypeslib",
        "import numpy as np\nnp.ctypeslib.load_library('evil', '.')\n",
        "native-code",
    ),
    _case("numpy-f2py", "import numpy.f2py\n", "native-code"),
    _case(
        "torch-cpp-extension",
        "from torch.utils.cpp_extension import load_inline\nload_inline('x', 'int f(){}')\n",
        "native-code",
    ),
    _case(
        "torch-ops-load-library",
        "import torch\ntorch.ops.load_library('/tmp/evil.so')\n",
        "native-code",
    ),
    _case(
        "torch-classes-load-library",
        "import torch as t\nt.classes.load_library('evil.so')\n",
        "native-code",
    ),
    _case(
        "onnxruntime-custom-ops",
        "import onnxruntime as ort\nso = ort.SessionOptions()\nso.register_custom_ops_library('/tmp/evil.so')\n",
        "native-code",
    ),
    _case(
        "ndarray-ctypes",
        "def f(arr):\n    return arr.ctypes._ctypes.CDLL('libc.so.6')\n",
        "dangerous-attribute",
        "native-code",
    ),
    _case(
        "torch-multiprocessing",
        "import torch.multiprocessing as mp\n",
        "dangerous-attribute",
        "forbidden-import",
    ),
    # --- os: only the harmless parts ------------------------------------------------------
    _case("os-system-alias", "import os as o\no.system('id')\n", "forbidden-call"),
    _case("os-from-import-as", "from os import system as s\ns('id')\n", "forbidden-import"),
    _case("os-star-import", "from os import *\nsystem('id')\n", "star-import"),
    _case("os-popen", "import os\nos.popen('id').read()\n", "forbidden-call"),
    _case("os-spawn", "import os\nos.spawnl(os.P_WAIT, '/bin/sh', 'sh')\n", "forbidden-call"),
    _case("os-exec", "import os\nos.execv('/bin/sh', ['sh'])\n", "forbidden-call"),
    _case("os-fork", "import os\nos.fork()\n", "forbidden-call"),
    _case("os-kill", "import os\nos.kill(os.getpid(), 9)\n", "forbidden-call"),
    _case("os-open", "import os\nos.open('/etc/passwd', 0)\n", "forbidden-call"),
    _case("os-remove", "import os\nos.remove('/etc/passwd')\n", "forbidden-call"),
    _case("os-putenv", "import os\nos.putenv('LD_PRELOAD', '/tmp/x.so')\n", "forbidden-call"),
    _case("os-environ-setitem", "import os\nos.environ['LD_PRELOAD'] = '/tmp/x.so'\n", "env-write"),
    _case("os-environ-update", "import os\nos.environ.update(PATH='/tmp')\n", "env-write"),
    _case(
        "os-environ-alias-write",
        "from os import environ as e\ne.setdefault('X', '1')\n",
        "env-write",
    ),
    _case(
        "os-environ-alias-subscript", "import os\nenv = os.environ\nenv['X'] = '1'\n", "env-write"
    ),
    _case(
        "os-environ-escape",
        "import os\nfrom collections.abc import MutableMapping\nMutableMapping.update(os.environ, {'X': '1'})\n",
        "env-write",
    ),
    _case("os-environ-del", "import os\ndel os.environ['HOME']\n", "env-write"),
    # --- aliasing and data flow -------------------------------------------------------------
    _case("rebinding-chain", "import os\nx = os\ny = x\ny.popen('id')\n", "forbidden-call"),
    _case("rebinding-non-denylisted-fn", "import os\nx = os\nx.getcwd()\n", "forbidden-call"),
    _case("tuple-unpack", "import os\na, b = 1, os\nb.listdir('/')\n", "forbidden-call"),
    _case(
        "starred-unpack", "import os\nfirst, *rest = [1, os]\nrest[0].getcwd()\n", "forbidden-call"
    ),
    _case(
        "list-element", "import os\nmods = [os]\nmods[0].remove('/etc/passwd')\n", "forbidden-call"
    ),
    _case("dict-value", "import os\nd = {'m': os}\nd['m'].unlink('/x')\n", "forbidden-call"),
    _case(
        "container-store", "import os\nd = {}\nd['m'] = os\nd['m'].rmdir('/x')\n", "forbidden-call"
    ),
    _case(
        "decorator-returns-module",
        "import os\ndef deco(f):\n    return os\n@deco\ndef g():\n    pass\ng.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "decorator-is-dangerous", "import os\n@os.system\ndef f():\n    pass\n", "forbidden-call"
    ),
    _case("default-argument", "import os\ndef f(m=os):\n    return m.getcwd()\n", "forbidden-call"),
    _case(
        "lambda-returns-module",
        "import os\nget = lambda: os\nget().chmod('/x', 0o777)\n",
        "forbidden-call",
    ),
    _case(
        "lambda-default-import",
        "(lambda m=__import__('os'): m.system('id'))()\n",
        "forbidden-builtin",
    ),
    _case(
        "list-comprehension-scope", "import os\n[m.rmdir('/x') for m in [os]]\n", "forbidden-call"
    ),
    _case("generator-next", "import os\nnext(m for m in (os,)).getcwd()\n", "forbidden-call"),
    _case(
        "dict-comprehension",
        "import os\n{k: v for k, v in [('a', os)]}['a'].getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "class-body-attribute", "import os\nclass A:\n    o = os\nA.o.getcwd()\n", "forbidden-call"
    ),
    _case(
        "self-attribute",
        "import os\nclass P:\n    def __init__(self):\n        self.o = os\n    def run(self):\n        return self.o.listdir('/')\n",
        "forbidden-call",
    ),
    _case(
        "method-argument-flow",
        "import os\nclass A:\n    def helper(self, m):\n        return m.listdir('/')\n    def run(self):\n        return self.helper(os)\n",
        "forbidden-call",
    ),
    _case(
        "function-argument-flow",
        "import os\ndef use(m):\n    return m.getcwd()\nuse(os)\n",
        "forbidden-call",
    ),
    _case(
        "keyword-argument-flow",
        "import os\ndef use(*, m):\n    return m.getcwd()\nuse(m=os)\n",
        "forbidden-call",
    ),
    _case(
        "function-return-flow",
        "import os\ndef get():\n    return os\nget().kill(1, 9)\n",
        "forbidden-call",
    ),
    _case(
        "generator-yield-flow",
        "import os\ndef gen():\n    yield os\nfor m in gen():\n    m.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "closure",
        "import os\ndef outer():\n    m = os\n    def inner():\n        return m.getcwd()\n    return inner\n",
        "forbidden-call",
    ),
    _case("walrus", "import os\nif (o := os):\n    o.getcwd()\n", "forbidden-call"),
    _case(
        "walrus-in-comprehension",
        "import os\n[(m := x) for x in [os]]\nm.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "match-capture", "import os\nmatch os:\n    case m:\n        m.getcwd()\n", "forbidden-call"
    ),
    _case(
        "match-class-attribute",
        "import os\nmatch os:\n    case object(system=s):\n        s('id')\n",
        "forbidden-call",
    ),
    _case(
        "match-class-getcwd",
        "import os\nmatch os:\n    case object(getcwd=g):\n        g()\n",
        "forbidden-call",
    ),
    _case(
        "match-args-gadget", "class C:\n    __match_args__ = ('system',)\n", "dangerous-attribute"
    ),
    _case(
        "global-rebinding",
        "import os\ndef setup():\n    global h\n    h = os\ndef run():\n    return h.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "nonlocal-rebinding",
        "import os\ndef outer():\n    h = None\n    def inner():\n        nonlocal h\n        h = os\n    inner()\n    return h.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "functools-reduce",
        "import os\nimport functools\nfunctools.reduce(lambda a, b: a, [os]).getcwd()\n",
        "forbidden-call",
        "module-escape",
    ),
    _case(
        "module-escape",
        "import os\nimport functools\nf = functools.partial(print, os)\n",
        "module-escape",
    ),
    _case("module-in-exception", "import os\nraise ValueError(os)\n", "module-escape"),
    _case("unknown-receiver-system", "def f(x):\n    return x.system('id')\n", "forbidden-call"),
    _case("unknown-receiver-os", "def f(x):\n    return x.os.getcwd()\n", "dangerous-attribute"),
    _case(
        "unknown-receiver-subprocess-shell",
        "def f(loop, proto):\n    return loop.subprocess_shell(proto, 'id')\n",
        "forbidden-call",
    ),
    # --- protocol methods and properties call code implicitly ---------------------------
    _case(
        "property-returns-module",
        "import os\nclass A:\n    @property\n    def o(self):\n        return os\n    def run(self):\n        return self.o.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "property-call-lambda",
        "import os\nclass A:\n    o = property(lambda self: os)\n    def run(self):\n        return self.o.listdir('/')\n",
        "forbidden-call",
        "module-escape",
    ),
    _case(
        "getattr-protocol",
        "import os\nclass A:\n    def __getattr__(self, name):\n        return os\nA().x.getcwd()\n",
        "module-escape",
    ),
    _case(
        "getitem-protocol",
        "import os\nclass A:\n    def __getitem__(self, k):\n        return os\nA()['x'].getcwd()\n",
        "module-escape",
    ),
    _case(
        "call-protocol",
        "import os\nclass A:\n    def __call__(self):\n        return os\nA()().getcwd()\n",
        "module-escape",
    ),
    _case(
        "iter-protocol",
        "import os\nclass A:\n    def __iter__(self):\n        yield os\nfor m in A():\n    m.getcwd()\n",
        "module-escape",
    ),
    _case(
        "enter-protocol",
        "import os\nclass A:\n    def __enter__(self):\n        return os\n    def __exit__(self, *a):\n        pass\nwith A() as m:\n    m.getcwd()\n",
        "module-escape",
    ),
    _case(
        "new-protocol",
        "import os\nclass A:\n    def __new__(cls):\n        return os\nA().getcwd()\n",
        "module-escape",
    ),
    _case(
        "metaclass-call-protocol",
        "import os\nclass M(type):\n    def __call__(cls):\n        return os\nclass A(metaclass=M):\n    pass\nA().getcwd()\n",
        "module-escape",
    ),
    _case(
        "defaultdict-factory",
        "import os\nfrom collections import defaultdict\nd = defaultdict(lambda: os)\nd['x'].getcwd()\n",
        "forbidden-call",
        "module-escape",
    ),
    _case(
        "callback-returns-module",
        "import os\nimport pandas as pd\ns = pd.Series([1]).map(lambda x: os)\n",
        "module-escape",
    ),
    _case(
        "lazy-import-unsafe-load",
        "def _torch():\n    import torch\n    return torch\ndef f(p):\n    return _torch().load(p)\n",
        "unsafe-deserialization",
    ),
    _case(
        "class-decorator-returns-module",
        "import os\n@(lambda c: os)\nclass A:\n    pass\nA.getcwd()\n",
        "forbidden-call",
    ),
    _case(
        "class-decorator-function",
        "import os\ndef deco(c):\n    return os\n@deco\nclass A:\n    pass\nA.listdir('/')\n",
        "forbidden-call",
    ),
    # --- positional forms of unsafe switches, native libraries ---------------------------
    _case(
        "numpy-load-positional-allow-pickle",
        "import numpy as np\nnp.load('x.npy', None, True)\n",
        "unsafe-deserialization",
    ),
    _case(
        "numpy-load-aliased",
        "import numpy as np\nload = np.load\nload('x.npy', None, True)\n",
        "unsafe-deserialization",
    ),
    _case(
        "sentence-transformers-positional-trust",
        "from sentence_transformers import SentenceTransformer\nSentenceTransformer('x', None, None, None, None, None, None, True)\n",
        "remote-code",
    ),
    _case(
        "pipeline-positional-trust",
        "from transformers import pipeline\npipeline('t', 'm', None, None, None, None, None, None, None, None, None, None, None, True)\n",
        "remote-code",
    ),
    _case(
        "onnxruntime-ep-library",
        "import onnxruntime as ort\nort.register_execution_provider_library('x', '/tmp/x.so')\n",
        "native-code",
    ),
    _case(
        "torch-pluggable-allocator",
        "import torch\ntorch.cuda.memory.CUDAPluggableAllocator('/tmp/x.so', 'a', 'f')\n",
        "native-code",
    ),
    # --- private internals of libraries -------------------------------------------------
    _case(
        "torch-private-load", "import torch\ntorch.serialization._load('x')\n", "private-attribute"
    ),
    _case(
        "numpy-private-internals",
        "import numpy as np\nnp.core._multiarray_umath\n",
        "private-attribute",
    ),
    _case(
        "mimetypes-urllib",
        "import mimetypes\nmimetypes.urllib.request.urlopen('file:///etc/passwd')\n",
        "dangerous-attribute",
    ),
    _case(
        "logging-basicconfig-file",
        "import logging\nlogging.basicConfig(filename='/home/u/.bashrc')\n",
        "forbidden-call",
    ),
    _case(
        "ffmpeg-positional-cmd", "import ffmpeg\nffmpeg.run(stream, '/bin/sh')\n", "forbidden-call"
    ),
    _case(
        "ffmpeg-probe-cmd",
        "from ffmpeg import probe\nprobe('x', cmd='/bin/sh')\n",
        "forbidden-call",
    ),
    # --- forbidden builtins -------------------------------------------------------------
    _case("eval", "eval('1+1')\n", "forbidden-builtin"),
    _case(
        "exec-via-compile",
        "code = compile('print(1)', '<x>', 'exec')\nexec(code)\n",
        "forbidden-builtin",
    ),
    _case("dunder-import", "__import__('os').system('id')\n", "forbidden-builtin"),
    _case("open", "open('/etc/passwd').read()\n", "forbidden-builtin"),
    _case("alias-eval", "e = eval\ne('1')\n", "forbidden-builtin"),
    _case("builtin-as-default", "def f(x=exec):\n    x('1')\n", "forbidden-builtin"),
    _case("builtin-passed-around", "list(map(eval, ['1']))\n", "forbidden-builtin"),
    _case(
        "getattr-string-built", "import os\ngetattr(os, 'sy' + 'stem')('id')\n", "forbidden-builtin"
    ),
    _case(
        "getattr-partial", "import functools\ng = functools.partial(getattr)\n", "forbidden-builtin"
    ),
    _case("hasattr", "def f(x):\n    return hasattr(x, 'y')\n", "forbidden-builtin"),
    _case("globals", "globals()['__builtins__']\n", "forbidden-builtin"),
    _case("vars-lookup", "import os\nvars(os)['system']('id')\n", "forbidden-builtin"),
    _case("breakpoint", "breakpoint()\n", "forbidden-builtin"),
    _case("help", "help('os')\n", "forbidden-builtin"),
    _case("input", "x = input()\n", "forbidden-builtin"),
    _case("exit", "exit(0)\n", "forbidden-builtin"),
    _case("fullwidth-eval", "\uff45val('1')\n", "forbidden-builtin"),
    _case("fullwidth-attribute", "import os\nos.\uff53ystem('id')\n", "forbidden-call"),
    _case(
        "shadow-then-restore",
        "def open(p):\n    return p\ndel open\nopen('/etc/passwd')\n",
        "forbidden-builtin",
    ),
    _case(
        "conditional-shadow",
        "if False:\n    def eval(x):\n        return x\neval('1')\n",
        "forbidden-builtin",
    ),
    _case(
        "use-before-shadow",
        "def f():\n    return open('/etc/passwd')\nf()\ndef open(p):\n    return p\n",
        "forbidden-builtin",
    ),
    _case("shadow-with-eval", "open = eval\nopen('1')\n", "forbidden-builtin"),
    _case(
        "global-del-restores",
        "def open(p):\n    return p\ndef g():\n    global open\n    del open\nopen('/x')\n",
        "forbidden-builtin",
    ),
    _case("exec-in-class-body", "class A:\n    exec('import os')\n", "forbidden-builtin"),
    _case("builtins-in-fstring", "x = f\"{eval('1+1')}\"\n", "forbidden-builtin"),
    # --- dunder walks -----------------------------------------------------------------------
    _case("builtins-dict", "__builtins__['eval']('1')\n", "dunder-access"),
    _case("builtins-attribute", "__builtins__.exec('1')\n", "dunder-access"),
    _case("builtins-import-subscript", "__builtins__['__import__']('os')\n", "dunder-access"),
    _case("del-builtins", "del __builtins__\n", "dunder-access"),
    _case("subclasses-walk", "().__class__.__bases__[0].__subclasses__()\n", "dunder-access"),
    _case("object-subclasses", "object.__subclasses__()\n", "dunder-access"),
    _case("mro-method", "int.mro()[1]\n", "dangerous-attribute"),
    _case(
        "function-globals", "def f():\n    pass\nf.__globals__['__builtins__']\n", "dunder-access"
    ),
    _case("init-globals", "class A:\n    pass\nA.__init__.__globals__\n", "dunder-access"),
    _case("print-self", "print.__self__.eval('1')\n", "dunder-access"),
    _case("len-self-dict", "len.__self__.__dict__['exec']('1')\n", "dunder-access"),
    _case("module-dict", "import os\nos.__dict__['system']('id')\n", "dunder-access"),
    _case(
        "super-getattribute",
        "class A:\n    def f(self):\n        return super().__getattribute__('x')\n",
        "dunder-access",
    ),
    _case(
        "object-getattribute",
        "def f(x):\n    return object.__getattribute__(x, 'y')\n",
        "dunder-access",
    ),
    _case(
        "code-replace",
        "def f():\n    pass\nf.__code__ = f.__code__.replace(co_consts=(1,))\n",
        "dunder-access",
    ),
    _case(
        "annotations-mutation",
        "def f(x):\n    pass\nf.__annotations__['x'] = 'int'\n",
        "dunder-access",
    ),
    _case("class-assignment", "class A:\n    pass\na = A()\na.__class__ = int\n", "dunder-access"),
    _case(
        "reduce-gadget",
        "class Gadget:\n    def __reduce__(self):\n        return (print, ('x',))\n",
        "dangerous-definition",
    ),
    _case(
        "init-subclass-hook",
        "class Base:\n    def __init_subclass__(cls, **kw):\n        pass\n",
        "dangerous-definition",
    ),
    _case(
        "metaclass-prepare",
        "class Meta(type):\n    @classmethod\n    def __prepare__(mcs, name, bases):\n        return {}\nclass A(metaclass=Meta):\n    pass\n",
        "dangerous-definition",
    ),
    _case(
        "type-dict-reduce",
        "T = type('T', (), {'__reduce__': lambda self: (print, ('x',))})\n",
        "suspicious-string",
    ),
    # --- frames and tracebacks --------------------------------------------------------------
    _case(
        "traceback-frame-walk",
        "try:\n    1 / 0\nexcept Exception as e:\n    g = e.__traceback__.tb_frame.f_back.f_globals\n",
        "dunder-access",
        "dangerous-attribute",
    ),
    _case(
        "tb-frame-no-dunder",
        "def f(tb):\n    return tb.tb_frame.f_back.f_globals\n",
        "dangerous-attribute",
    ),
    _case(
        "generator-gi-frame",
        "def g():\n    yield 1\nx = g()\nx.gi_frame.f_back.f_builtins\n",
        "dangerous-attribute",
    ),
    _case(
        "coroutine-cr-frame",
        "async def c():\n    pass\nc().cr_frame.f_globals\n",
        "dangerous-attribute",
    ),
    _case(
        "async-generator-ag-frame",
        "async def a():\n    yield 1\na().ag_frame\n",
        "dangerous-attribute",
    ),
    _case(
        "sys-getframe-unknown",
        "def f(s):\n    return s._getframe(0).f_locals\n",
        "dangerous-attribute",
    ),
    _case(
        "logging-currentframe",
        "import logging\nlogging.currentframe().f_back\n",
        "dangerous-attribute",
    ),
    _case(
        "gc-referrers-unknown",
        "def f(m, x):\n    return m.get_referrers(x)\n",
        "dangerous-attribute",
    ),
    # --- modules reached through allowed modules ----------------------------------------
    _case(
        "typing-sys-modules",
        "import typing\ntyping.sys.modules['os'].system('id')\n",
        "dangerous-attribute",
    ),
    _case("logging-os-system", "import logging\nlogging.os.system('id')\n", "forbidden-call"),
    _case("logging-sys", "import logging\nlogging.sys.modules\n", "dangerous-attribute"),
    _case(
        "json-codecs-open",
        "import json\njson.codecs.open('/etc/passwd').read()\n",
        "dangerous-attribute",
    ),
    _case(
        "enum-bltns",
        "import enum\nenum.bltns.exec('1')\n",
        "dangerous-attribute",
        "forbidden-builtin",
    ),
    _case(
        "random-private-os",
        "import random\nrandom._os.system('id')\n",
        "forbidden-call",
        "private-attribute",
    ),
    _case(
        "dataclasses-inspect",
        "import dataclasses\ndataclasses.inspect.currentframe()\n",
        "dangerous-attribute",
    ),
    _case(
        "collections-sys",
        "import collections\ncollections._sys.modules\n",
        "dangerous-attribute",
        "private-attribute",
    ),
    _case("warnings-sys", "import warnings\nwarnings.sys.modules\n", "dangerous-attribute"),
    _case(
        "typing-operator", "import typing\ntyping.operator.attrgetter('x')\n", "dangerous-attribute"
    ),
    _case(
        "mimetypes-posixpath-os",
        "import mimetypes\nmimetypes.posixpath.os.system('id')\n",
        "forbidden-call",
    ),
    _case("os-path-os", "import os.path\nos.path.os.getcwd()\n", "forbidden-call"),
    _case("uuid-private", "import uuid\nuuid._get_command_stdout('id')\n", "private-attribute"),
    _case(
        "third-party-reexport-module-use",
        "from PIL import Image\nImage.io.open('/etc/passwd')\n",
        "dangerous-attribute",
    ),
    _case("third-party-os", "import numpy as np\nnp.os.system('id')\n", "forbidden-call"),
    _case(
        "string-formatter",
        "import string\nstring.Formatter().get_field('0.system', [0], {})\n",
        "dangerous-attribute",
    ),
    # --- evaluators of allowed libraries -----------------------------------------------
    _case("pandas-eval", "import pandas as pd\npd.eval('1+1')\n", "eval-like"),
    _case("dataframe-query-dynamic", "def f(df, expr):\n    return df.query(expr)\n", "eval-like"),
    _case(
        "dataframe-query-at-os",
        "import os\ndef f(df):\n    return df.query(\"@os.system('id')\", engine='python')\n",
        "forbidden-call",
    ),
    _case(
        "dataframe-eval-dunder",
        "def f(df):\n    return df.eval('a.__class__.__bases__')\n",
        "dunder-access",
        "suspicious-string",
    ),
    _case(
        "pil-imagemath-eval",
        "from PIL import ImageMath\nImageMath.eval('a+b', a=1, b=2)\n",
        "eval-like",
    ),
    _case(
        "pil-imagemath-unsafe-eval",
        "from PIL.ImageMath import unsafe_eval\nunsafe_eval('x')\n",
        "eval-like",
    ),
    _case(
        "logging-config-listen", "import logging.config\nlogging.config.listen(9999)\n", "eval-like"
    ),
    _case(
        "logging-config-dictconfig",
        "import logging\nlogging.config.dictConfig({'()': 'os.system'})\n",
        "eval-like",
    ),
    _case(
        "logging-file-handler",
        "import logging\nlogging.FileHandler('/home/u/.bashrc')\n",
        "forbidden-call",
    ),
    _case(
        "forward-ref-computed",
        "from typing import ForwardRef\nForwardRef('__im' + 'port__(\"os\")')\n",
        "eval-like",
        "string-built-name",
    ),
    _case(
        "forward-ref-string-call",
        "from typing import ForwardRef\nForwardRef(\"print('x')\")\n",
        "annotation-string",
    ),
    _case(
        "pydantic-import-string",
        "from pydantic import BaseModel, ImportString\nclass M(BaseModel):\n    f: ImportString\n",
        "forbidden-call",
    ),
    _case(
        "contextlib-chdir",
        "import contextlib\nwith contextlib.chdir('/'):\n    pass\n",
        "forbidden-call",
    ),
    _case("torch-distributed-rpc", "import torch.distributed.rpc as rpc\n", "forbidden-call"),
    _case("pil-imageshow", "from PIL import ImageShow\n", "forbidden-call"),
    _case(
        "ffmpeg-cmd-override",
        "import ffmpeg\nffmpeg.input('a').output('b').run(cmd='/bin/sh')\n",
        "forbidden-call",
    ),
    # --- string annotations and format strings ------------------------------------------
    _case(
        "annotation-call",
        "def f(x: \"__import__('os').system('id')\"):\n    pass\n",
        "forbidden-builtin",
        "annotation-string",
    ),
    _case(
        "annotation-nested",
        "from typing import List\nclass M:\n    x: List[\"eval('1')\"]\n",
        "forbidden-builtin",
        "annotation-string",
    ),
    _case(
        "annotation-module-attr",
        "import os\nfrom pydantic import BaseModel\nclass M(BaseModel):\n    x: 'os.getcwd'\n",
        "forbidden-call",
    ),
    _case("annotation-unparsable", "x: 'list of floats' = 1\n", "annotation-string"),
    _case("annotation-return", 'def f() -> "(lambda: 0)()":\n    pass\n', "annotation-string"),
    _case(
        "annotation-type-alias",
        "from typing import Optional\nT = Optional[\"__import__('os')\"]\n",
        "forbidden-builtin",
        "annotation-string",
    ),
    _case(
        "format-mro-walk",
        "'{0.__class__.__mro__}'.format(1)\n",
        "format-string",
        "suspicious-string",
    ),
    _case(
        "format-globals",
        "def f():\n    pass\n'{0.__globals__}'.format(f)\n",
        "format-string",
        "suspicious-string",
    ),
    _case(
        "format-map-walk",
        "'{x.__init__.__globals__[os]}'.format_map({'x': 1})\n",
        "format-string",
        "suspicious-string",
    ),
    _case(
        "format-frame-walk",
        "def f(g):\n    return '{0.gi_frame.f_globals}'.format(g)\n",
        "format-string",
        "suspicious-string",
    ),
    _case(
        "format-built-at-runtime",
        "def f(name, obj):\n    return ('{0.' + name + '}').format(obj)\n",
        "format-string",
    ),
    _case(
        "logging-formatter-walk",
        "import logging\nlogging.Formatter('{process.__class__}', style='{')\n",
        "format-string",
    ),
    _case("joined-string-dunder", "x = f\"__glo{''}bals__\"\n", "string-built-name"),
    _case("percent-string-dunder", "x = '%s%s' % ('__glo', 'bals__')\n", "string-built-name"),
    _case("join-string-name", "x = ''.join(['sys', 'tem'])\n", "string-built-name"),
    # --- parsing and encoding tricks ---------------------------------------------------
    _case(
        "coding-cookie-utf7",
        b"# -*- coding: utf-7 -*-\nimport os+ADs-os.system(+ACI-id+ACI-)\n",
        "forbidden-call",
    ),
    _case("null-byte", b"x = 1\x00\nimport os\n", "null-byte"),
    _case("syntax-error", "def f(:\n", "parse-error"),
    _case("bad-coding-cookie", b"# coding: rot-unknown\nx = 1\n", "parse-error"),
    _case(
        "nesting-bomb-parens", "x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n", "parse-error"
    ),
    _case("nesting-bomb-attribute-chain", "x = a" + ".b" * 50_000 + "\n", "parse-error"),
    _case("nesting-bomb-additions", "x = 1" + "+1" * 100_000 + "\n", "parse-error"),
    _case("huge-file", "x = 1\n" * 400_000, "file-too-large"),
    # --- platform internals through the SDK: only the names of sdk.__all__ ------------------
    _case(
        "sdk-internal-lifts-the-guard",
        "from mixpeek_orchestration.sdk.helpers import trusted\nwith trusted():\n    pass\n",
        "import-not-allowed",
    ),
    _case(
        "sdk-private-module",
        "from mixpeek_orchestration.sdk._context import use_context\n",
        "import-not-allowed",
    ),
    _case(
        "sdk-private-module-as-a-name",
        "from mixpeek_orchestration.sdk import _helpers\n",
        "import-not-allowed",
    ),
    _case(
        "sdk-internal-by-attribute",
        "import mixpeek_orchestration.sdk as sdk\nsdk._models.current_context()\n",
        "import-not-allowed",
    ),
    _case(
        "platform-package-beside-the-sdk",
        "from mixpeek_orchestration import sandbox\n",
        "import-not-allowed",
    ),
    _case(
        "compat-module-internal",
        "from engine.inference.mixpeek.text_extractor.services import trusted\n",
        "import-not-allowed",
    ),
]

_IDS = [case[0] for case in ATTACKS]


def test_corpus_is_large_and_ids_are_unique() -> None:
    assert len(ATTACKS) >= 60
    assert len(set(_IDS)) == len(_IDS)
    for _, _, rules in ATTACKS:
        assert rules is None or rules <= RULES, rules


@pytest.mark.parametrize(("case_id", "source", "rules"), ATTACKS, ids=_IDS)
def test_attack_is_rejected(
    case_id: str, source: str | bytes, rules: frozenset[str] | None
) -> None:
    violations = scan_source(source, "attack.py")
    errors = [v for v in violations if v.severity == "error"]
    assert errors, f"{case_id}: no error; got {violations}"
    if rules is not None:
        found = {v.rule for v in errors}
        assert found & rules, f"{case_id}: expected one of {sorted(rules)}, got {errors}"


def test_cross_file_module_reexport(tmp_path: Path) -> None:
    """``utils.py`` binds ``os`` under another name; ``pipeline.py`` imports it from there."""
    (tmp_path / "utils.py").write_text("import os as o\n")
    (tmp_path / "pipeline.py").write_text("from .utils import o\no.getcwd()\n")
    (tmp_path / "realtime.py").write_text("import utils\nutils.o.listdir('/')\n")
    report = scan_directory(tmp_path)
    hits = [(v.file, v.rule) for v in report.errors]
    assert ("pipeline.py", "module-reexport") in hits
    assert ("realtime.py", "module-reexport") in hits
    assert not report.passed


def test_cross_file_function_returning_module(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("import os\ndef get():\n    return os\n")
    (tmp_path / "main.py").write_text("from .helpers import get\nget().getcwd()\n")
    report = scan_directory(tmp_path)
    assert any(v.file == "main.py" and v.rule == "module-reexport" for v in report.errors)


def test_cross_file_attribute_holding_module(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("import os\nclass Box:\n    o = os\n")
    (tmp_path / "main.py").write_text("from .helpers import Box\nBox.o.getcwd()\n")
    report = scan_directory(tmp_path)
    assert any(v.file == "main.py" and v.rule == "module-reexport" for v in report.errors)


def test_cross_file_star_reexport(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("import os\nenv = os.environ\n")
    (tmp_path / "main.py").write_text("from .helpers import *\nenv['X'] = '1'\n")
    report = scan_directory(tmp_path)
    assert any(v.file == "main.py" and v.rule == "module-reexport" for v in report.errors)


def test_operator_allowed_pickle_still_rejects_loads() -> None:
    policy = ScanPolicy(extra_allowed_imports=frozenset({"pickle"}))
    violations = scan_source("import pickle\npickle.loads(b'')\n", "x.py", policy=policy)
    assert any(v.rule == "unsafe-deserialization" and v.severity == "error" for v in violations)
    assert any(v.rule == "unsafe-deserialization" and v.severity == "warning" for v in violations)


def test_operator_cannot_reallow_forbidden_modules() -> None:
    policy = ScanPolicy(extra_allowed_imports=frozenset({"subprocess", "sys", "ctypes"}))
    for name in ("subprocess", "sys", "ctypes"):
        violations = scan_source(f"import {name}\n", "x.py", policy=policy)
        assert [v.rule for v in violations] == ["forbidden-import"], name


def test_the_guard_lifting_import_is_refused_with_file_line_and_rule(tmp_path: Path) -> None:
    """``sdk.helpers`` once re-exported the guard's ``trusted``: importing platform internals
    through the SDK is refused where it is written, and public SDK names still pass."""
    (tmp_path / "pipeline.py").write_text(
        "from mixpeek_orchestration.sdk import StepDefinition, ResourceType\n"
        "from mixpeek_orchestration.sdk.helpers import trusted\n"
        "STEP = ResourceType.CPU\n"
    )
    report = scan_directory(tmp_path)
    assert [(v.file, v.line, v.rule) for v in report.errors] == [
        ("pipeline.py", 2, "import-not-allowed")
    ]
