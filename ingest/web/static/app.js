// The pages work without this. It adds one shortcut: "/" moves to the search box.
document.addEventListener("keydown", (event) => {
  const box = document.getElementById("q");
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
  if (event.key === "/" && box && !typing) {
    event.preventDefault();
    box.focus();
  }
});
