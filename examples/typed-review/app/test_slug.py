import unittest

from slug import slugify, unique


class SlugTest(unittest.TestCase):
    def test_words(self) -> None:
        self.assertEqual(slugify("Hello, World!"), "hello-world")

    def test_accents(self) -> None:
        self.assertEqual(slugify("Crème brûlée"), "creme-brulee")

    def test_unique(self) -> None:
        self.assertEqual(unique("a", {"a", "a-2"}), "a-3")


if __name__ == "__main__":
    unittest.main()
