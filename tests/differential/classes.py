"""Classes: methods, properties, static and class methods, inheritance, multi-line conditions."""


class Shape:
    sides = 0

    def __init__(self, name):
        self.name = name
        self._area = None

    @property
    def area(self):
        if self._area is None:
            self._area = self.compute_area()
        return self._area

    @area.setter
    def area(self, value):
        if value < 0:
            raise ValueError("negative area")
        self._area = value

    def compute_area(self):
        raise NotImplementedError

    @staticmethod
    def valid_name(name):
        return bool(name) and name.isidentifier()

    @classmethod
    def named(cls, name):
        return cls(name) if cls.valid_name(name) else None

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class Rectangle(Shape):
    sides = 4

    def __init__(self, name, width, height):
        super().__init__(name)
        self.width, self.height = width, height

    def compute_area(self):
        return self.width * self.height

    def is_square(self):
        if (self.width == self.height
                and self.width > 0
                and not isinstance(self, Triangle)):
            return True
        return False

    def __eq__(self, other):
        if not isinstance(other, Rectangle): return NotImplemented
        return (self.width, self.height) == (other.width, other.height)

    __hash__ = None


class Triangle(Shape):
    sides = 3

    def __init__(self, base, height):
        super().__init__("triangle")
        self.base = base
        self.height = height

    def compute_area(self):
        return self.base * self.height / 2


class Registry(dict):
    def __missing__(self, key):
        value = self[key] = len(self)
        return value

    def lookup(self, key, *, create=True):
        if create or key in self:
            return self[key]
        else:
            return None


if (Shape.sides == 0 and
        Rectangle.sides == 4 or
        Triangle.sides == 5):
    kinds = "consistent"
else:
    kinds = "odd"

if __name__ == "__main__":
    r = Rectangle("r", 2, 3)
    assert r.area == 6 and r.area == 6
    r.area = 10
    assert not r.is_square()
    assert Shape.named("ok").name == "ok"
    assert Shape.valid_name("")  is False
    assert repr(Triangle(1, 2)) == "Triangle('triangle')"
    assert r == Rectangle("s", 2, 3)
    registry = Registry()
    assert registry.lookup("a") == 0
