document.getElementById("main").textContent = "orgsync";
