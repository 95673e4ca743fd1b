"""``Distribution.metadata`` that answers ``Name`` and ``Version`` from the
index and reads ``METADATA`` only when something else is asked.

Stock ``dist.metadata`` reads and parses the whole metadata file with the
email parser at every access. Programs like pluggy and flake8 ask it only
for ``metadata["Name"]`` and ``metadata["Version"]``, which the index
already holds.

The object epcache returns is an instance of a subclass of the flavor's own
``_adapters.Message`` (so of ``email.message.Message`` too). It starts with
nothing of the email message's state in its instance dictionary, only the
distribution and the two index values. ``get()`` (and so ``[]``, which the
email code implements with ``get``) answers ``name`` and ``version``, in any
case, from those values. Every other use reaches for the state the email
code keeps in the instance (``_headers``, ``policy``, ``_payload`` ...) or
for the object itself (``__dict__``, ``__class__``, ``setattr``, pickling);
each of these first *materializes* the object: it has the stock code read
and parse the file exactly as stock ``dist.metadata`` would, moves the
resulting message's state into its own dictionary and changes its class to
the flavor's ``Message``. From then on it *is* the stock object: same
class, same state, every method the real one, the same answers, warnings
and errors. Until then, ``type(md)`` is the subclass, which has the same
name, qualified name and module (``type(md) is Message`` is the one test
that tells them apart; ``isinstance`` and ``md.__class__`` do not).
"""

import email.message
import threading

# The email message's instance dictionary, past the ``__dict__`` property
# the lazy class defines, and the object-level class setter.
_raw_dict = email.message.Message.__dict__["__dict__"].__get__
_set_class = object.__dict__["__class__"].__set__

# Keys of a lazy message's own dictionary (gone once it is materialized).
_DIST = "_epcache_dist"
_FAST = "_epcache_fast"

_lock = threading.Lock()


def index_headers(name, version, diagnostics):
    """What a lazy message may answer without reading: a dict from the
    lower-case header name to the value, or ``None`` when the index cannot
    vouch for stock's answer (no Name; something about the metadata could
    not be read; a value with line breaks or other characters that the
    email parser and ``_adapters.Message`` treat specially, which the
    importlib flavors do not all treat alike)."""
    if name is None or diagnostics or not name.isprintable():
        return None
    fast = {"name": name}
    if version is not None and version.isprintable():
        fast["version"] = version
    return fast


def lazy_message_maker(message_class):
    """A function ``make(dist, fast)`` returning a lazy message for
    ``message_class`` (the flavor's ``_adapters.Message``), or ``None``
    when this Python's objects cannot change class as the design needs
    (then ``dist.metadata`` is left to the stock code)."""
    base_get = message_class.get

    def materialize(self):
        """Turns the lazy message into the stock one, in place."""
        d = _raw_dict(self)
        dist = d.get(_DIST)
        if dist is None:
            return
        # The stock read, outside the lock: it may raise, exactly as stock
        # `dist.metadata` raises, leaving this object lazy.
        real = dist._epcache_stock_metadata()
        if not isinstance(real, message_class):
            # The file went away since the index was written (and this
            # flavor would return None for that): an empty message.
            real = message_class(email.message_from_string(""))
        with _lock:
            if _DIST not in d:
                return  # another thread got there first
            d.update(_raw_dict(real))
            _set_class(self, type(real))
            del d[_DIST], d[_FAST]

    def get(self, name, failobj=None):
        fast = _raw_dict(self).get(_FAST)
        if fast is not None and type(name) is str:
            value = fast.get(name.lower())
            if value is not None:
                return value
        materialize(self)
        return base_get(self, name, failobj)

    def __getattr__(self, attr):
        # Reached for the email message's state, which a lazy message does
        # not have yet, and for names nothing has.
        if _DIST not in _raw_dict(self):
            raise AttributeError(attr)
        materialize(self)
        return getattr(self, attr)

    def __setattr__(self, attr, value):
        materialize(self)
        setattr(self, attr, value)

    def __delattr__(self, attr):
        materialize(self)
        delattr(self, attr)

    def __dict__(self):
        materialize(self)
        return _raw_dict(self)

    def __class__(self):
        materialize(self)
        return type(self)

    def __reduce_ex__(self, protocol):
        materialize(self)
        return self.__reduce_ex__(protocol)

    def __reduce__(self):
        materialize(self)
        return self.__reduce__()

    namespace = {
        "__module__": message_class.__module__,
        "__qualname__": message_class.__qualname__,
        "__doc__": message_class.__doc__,
        "get": get,
        "__getattr__": __getattr__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__dict__": property(__dict__),
        "__class__": property(__class__),
        "__reduce_ex__": __reduce_ex__,
        "__reduce__": __reduce__,
    }
    if hasattr(object, "__getstate__"):  # Python >= 3.11

        def __getstate__(self):
            materialize(self)
            return self.__getstate__()

        namespace["__getstate__"] = __getstate__

    try:
        lazy_class = type(message_class.__name__, (message_class,), namespace)
        # The class change materializing relies on, tried once.
        probe = object.__new__(lazy_class)
        _set_class(probe, message_class)
    except TypeError:
        return None

    new = object.__new__

    def make(dist, fast):
        md = new(lazy_class)
        d = _raw_dict(md)
        d[_DIST] = dist
        d[_FAST] = fast
        return md

    make.lazy_class = lazy_class
    return make
