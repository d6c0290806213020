#include <cstdio>

int main() {
  std::puts("forklift 0.1.0");
  return 0;
}
